"""`planllm bench grounded`: plans for tasks the model never trained on. State-grounded decoding
against Viterbi with the LLM re-ranking, on val and novel-val (held-out tasks, episodes of their
own seed stream: where the decoding is chosen), on the closed test split and on the held-out
(novel) tasks, and the state head's error.

One model folder with a state head (`planllm states` or `planllm train` with states.enabled) is
planned through the one pipeline with each decoding:
- "Viterbi + LLM re-ranking": the decoding without states (the train transition matrix and the
  LLM at the folder's weight);
- "grounded": the search through the state head's readings, with the backoff prior and the LLM
  where the plan is familiar (planllm_ros.model.decoding.grounded_plans);
- "grounded, no LLM": the same without the LLM re-ranking (what the LLM adds);
- "grounded, true states" (tabletop only, an upper reference that no deployed model can be):
  the same search reading the world's hidden symbolic states instead of the state head.
Tabletop only, beside them: the search alone reading the true states at T=3 and 4, and the
task-independent ceiling (training.tabletop.baselines), what a planner that knows every step's
effect but no task can expect.
The state head's error is measured against the hidden states too: per proposition, over the
propositions about objects in the scene, on the start and goal images of each split. Verdicts
are paired bootstraps that resample episodes. Several `--model` folders (one per seed of a
preset: each plans its own seed's splits) give mean ± std over them and verdicts pooled over
the seeds. `--against DIR` plans the same samples with another folder's state head (grounded)
and compares the two, split by split: how a new head or new labels compare with the one before.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import numpy as np

from planllm_ros.model.decoding import grounded_plans
from planllm_ros.model.states import normalize
from training.benchmarks.report import Table, bar_plot, mean_std, require_committed, write_report
from training.benchmarks.stats import describe, paired_bootstrap, per_sample_success
from training.evaluation.evaluate import load_for_eval, predict_split
from training.evaluation.metrics import procedure_metrics
from training.train.splits import load_split

SPLITS = ("val", "novel-val", "test", "novel")
# novel-val: episodes of the held-out tasks from the data seed stream seed + NOVEL_VAL_SEED, which
# no split of any seed below it draws; with val, it is where the decoding is chosen
NOVEL_VAL_SEED = 1000
DECODINGS = ("Viterbi + LLM re-ranking", "grounded", "grounded, no LLM")
TRUE_STATES = "grounded, true states (upper reference)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, nargs="+", default=[Path("models/tabletop-tiny")],
                        help="model folders with a state head (default models/tabletop-tiny); several: the runs of "
                             "one preset with different seeds, each planned on its own seed's splits (mean ± std "
                             "over them, verdicts pooled over the seeds)")
    parser.add_argument("--samples", type=int, default=None, help="samples per split (default 1000; quick 40)")
    parser.add_argument("--batch-size", type=int, default=100, help="samples per pipeline call (default 100)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another model folder with a state head: its grounded plans on the same samples, "
                             "compared with --model's (one --model only; paired bootstrap per split) and its head's "
                             "error")


def hidden_truth(sentences, episodes, keys) -> tuple[np.ndarray, np.ndarray]:
    """(frames, P) truth of each proposition in the tabletop frames `keys` = (episode, state
    index), and whether its object is in the scene. Diagnostics only: the model never sees these."""
    from training.tabletop.world import STEPS, sentence

    condition = {normalize(sentence(c)): c for step in STEPS for c in step.pre + step.post}
    conditions = [condition[normalize(s)] for s in sentences]
    truth, present = [], []
    for e, k in keys:
        state = episodes[e].states[k]
        present.append([c.obj in state for c in conditions])
        truth.append([c.obj in state and c.holds(state) for c in conditions])
    return np.array(truth, dtype=np.float64), np.array(present)


def run_split(loaded, data, split: str, batch_size: int, grounded_only: bool = False) -> dict:
    """Every decoding's predictions on one split (grounded_only: the grounded one), the state
    readings and (tabletop) the truth."""
    from training.tabletop.dataset import windows

    if split == "novel-val":
        data, split = dataclasses.replace(data, seed=data.seed + NOVEL_VAL_SEED), "novel"
    dataset = load_split(data, split, loaded.model.config.visual)
    gt = np.stack(dataset.sequences()).astype(np.int64)
    out = {"gt": gt, "episodes": np.array([s.video for s in dataset.samples]), "pred": {}}
    policies = {"grounded": loaded.policy(method="grounded", captions=False)}
    if not grounded_only:
        policies = {"Viterbi + LLM re-ranking": loaded.policy(method="viterbi", captions=False), **policies,
                    "grounded, no LLM": loaded.policy(method="grounded", captions=False, llm_weight=0.0)}
    for name, policy in policies.items():
        batches = predict_split(loaded, dataset, policy, batch_size)
        out["pred"][name] = np.concatenate([b.step_ids for b in batches])
    probs = np.concatenate([b.probs.numpy() for b in batches])
    start = np.concatenate([b.start_states for b in batches])
    goal = np.concatenate([b.goal_states for b in batches])
    if data.dataset == "tabletop":
        episodes, picked = windows(split, data.horizon, data.seed, len(dataset))
        horizon = data.horizon
        true_start, present_start = hidden_truth(loaded.states.sentences, episodes, picked)
        true_goal, present_goal = hidden_truth(loaded.states.sentences, episodes, [(e, k + horizon) for e, k in picked])
        if not grounded_only:
            paths, _, _ = grounded_plans(probs, true_start, true_goal, policies["grounded, no LLM"])
            out["pred"][TRUE_STATES] = paths[:, 0]
        readings = np.concatenate([start, goal]) >= 0.5
        truth = np.concatenate([true_start, true_goal]) >= 0.5
        present = np.concatenate([present_start, present_goal])
        wrong = readings != truth
        out["state_error"] = float(wrong[present].mean())
        out["state_error_all"] = float(wrong.mean())
        out["frames_exact"] = float((~wrong | ~present).all(1).mean())
    return out


def _against(args: argparse.Namespace, other, data, results: dict) -> Table:
    """Grounded SR and head error of --model against those of `other` (--against's folder), on
    the same samples."""
    mine_name = args.model[0].name
    table = Table(f"grounded decoding: {mine_name} vs {args.against.name} (the same samples; paired "
                  "bootstrap resampling episodes; head error about objects in the scene, percent)",
                  ["split", f"{mine_name} SR", f"{args.against.name} SR", "verdict",
                   f"{mine_name} head error", f"{args.against.name} head error"])
    for split in SPLITS:
        mine, theirs = results[split], run_split(other, data, split, args.batch_size, grounded_only=True)
        if not np.array_equal(mine["gt"], theirs["gt"]):
            raise SystemExit(f"planllm bench grounded: {args.against} was planned on other {split} samples")
        a, b = (per_sample_success(r["pred"]["grounded"], r["gt"]) for r in (mine, theirs))
        d = paired_bootstrap([a], [b], episodes=[mine["episodes"]])
        errors = [f"{100 * r['state_error']:.1f}" if "state_error" in r else "n/a" for r in (mine, theirs)]
        table.rows.append([split, f"{a.mean():.1f}", f"{b.mean():.1f}",  # per_sample_success is 0 or 100
                           describe(d, mine_name, args.against.name), *errors])
    return table


def true_state_search(loaded, split: str, horizon: int, seed: int, count: int) -> float:
    """SR of the search alone (no images, no step decoder: uniform step probabilities) reading the
    hidden true states, with the folder's step-effect model and backoff prior: how far the
    described steps' effects carry at each horizon, whatever the images show."""
    from training.tabletop.dataset import windows

    episodes, picked = windows(split, horizon, seed, count)
    sentences = loaded.states.sentences
    start, _ = hidden_truth(sentences, episodes, picked)
    goal, _ = hidden_truth(sentences, episodes, [(e, k + horizon) for e, k in picked])
    probs = np.full((len(picked), horizon, loaded.model.config.num_steps), 1.0 / loaded.model.config.num_steps)
    policy = loaded.policy(method="grounded", captions=False, llm_weight=0.0)
    paths, _, _ = grounded_plans(probs, start, goal, policy)
    truth = np.array([episodes[e].plan[k:k + horizon] for e, k in picked])
    return 100.0 * float((paths[:, 0] == truth).all(1).mean())


def folder_names(paths: list[Path]) -> list[str]:
    """Each folder's name, with its parent's where names repeat (seed0/states, seed1/states)."""
    names = [p.name for p in paths]
    return names if len(set(names)) == len(names) else [f"{p.parent.name}/{p.name}" for p in paths]


def independent_ceiling(split: str, horizon: int) -> float:
    """training.tabletop.baselines.task_independent_ceiling over the windows of `split`'s tasks
    (novel: the held-out tasks; every other split: the seen ones)."""
    from training.tabletop.baselines import task_independent_ceiling, window_distribution
    from training.tabletop.dataset import split_tasks
    from training.tabletop.tasks import TASKS

    return task_independent_ceiling(window_distribution([TASKS[i] for i in split_tasks(split)], horizon), horizon)


def load_grounded(args: argparse.Namespace, bench: str):
    """The folder `args.model`, which must have a state head, for `planllm bench {bench}` (a full
    run only from a commit)."""
    if not args.quick:
        require_committed(args.allow_dirty)
    loaded = load_for_eval(args.model)
    if loaded.states is None:
        raise SystemExit(f"planllm bench {bench}: {args.model} has no state head; fit one with `planllm states`")
    return loaded


def load_grounded_folders(args: argparse.Namespace, bench: str) -> list:
    """Each of the folders `args.model` (a list) through load_grounded, a folder given twice
    loaded once; SystemExit unless they plan the same dataset at the same horizon."""
    loaded = {path: load_grounded(argparse.Namespace(**{**vars(args), "model": path}), bench)
              for path in dict.fromkeys(args.model)}
    models = [loaded[path] for path in args.model]
    if len({(m.config.data.dataset, m.config.data.horizon) for m in models}) > 1:
        raise SystemExit(f"planllm bench {bench}: the --model folders plan different datasets or horizons")
    return models


def run(args: argparse.Namespace, command: str) -> list[Path]:
    if args.against is not None and len(args.model) > 1:
        raise SystemExit("planllm bench grounded: --against compares one --model folder, not several")
    models = load_grounded_folders(args, "grounded")
    other = None if args.against is None else load_grounded(
        argparse.Namespace(**{**vars(args), "model": args.against}), "grounded --against")
    if other is not None and other.model.config.visual != models[0].model.config.visual:
        raise SystemExit(f"planllm bench grounded: {args.against} reads other visual features than {args.model[0]}")
    datas = [dataclasses.replace(copy.deepcopy(m.config.data), eval_samples=args.samples or (40 if args.quick else 1000))
             for m in models]
    # per folder (seed), per split
    results = [{split: run_split(m, d, split, args.batch_size) for split in SPLITS} for m, d in zip(models, datas)]
    data, seeds = datas[0], [d.seed for d in datas]

    names = list(results[0]["val"]["pred"])
    # per decoding and split, one metrics dict per folder
    metrics = {n: {s: [procedure_metrics(r[s]["pred"][n], r[s]["gt"]) for r in results] for s in SPLITS}
               for n in names}

    def cell(values: list[float]) -> str:
        return f"{values[0]:.1f}" if len(values) == 1 else mean_std(values)

    over = ("one model folder" if len(models) == 1
            else f"mean ± std over {len(models)} folders (seeds {', '.join(map(str, seeds))})")
    table = Table(f"{data.dataset}, T={data.horizon}: SR / mAcc (percent) per split, {over} "
                  f"({', '.join(folder_names(args.model))}), {data.eval_samples} samples per split",
                  ["decoding", *[f"{s} SR" for s in SPLITS], *[f"{s} mAcc" for s in SPLITS]])
    for name in names:
        table.rows.append([name, *[cell([m["sr"] for m in metrics[name][s]]) for s in SPLITS],
                           *[cell([m["macc"] for m in metrics[name][s]]) for s in SPLITS]])
    verdicts = Table("verdicts on SR: grounded vs Viterbi + LLM re-ranking (paired bootstrap resampling episodes"
                     f"{'' if len(models) == 1 else ' within each seed, pooled over the seeds'})", ["split", "verdict"])
    for split in SPLITS:
        pairs = [[per_sample_success(r[split]["pred"][n], r[split]["gt"]) for r in results]
                 for n in ("grounded", "Viterbi + LLM re-ranking")]
        d = paired_bootstrap(*pairs, episodes=[r[split]["episodes"] for r in results])
        verdicts.rows.append([split, describe(d, "grounded", "Viterbi + LLM re-ranking")])
    tables = [table, verdicts]
    if other is not None:
        tables.append(_against(args, other, data, results[0]))
    if "state_error" in results[0]["val"]:
        tables.append(Table("state head error against the hidden world states (percent of propositions read wrong)",
                            ["split", "about objects in the scene", "all propositions", "frames read wholly right"],
                            [[s, *[cell([100 * r[s][key] for r in results])
                                   for key in ("state_error", "state_error_all", "frames_exact")]] for s in SPLITS]))
    if data.dataset == "tabletop":
        horizons = (3, 4)
        tables.append(Table("the search alone with the true states (no images, uniform step probabilities; SR, percent)",
                            ["split", *[f"T={h}" for h in horizons]],
                            [[split, *[cell([true_state_search(m, split, h, d.seed, d.eval_samples)
                                             for m, d in zip(models, datas)]) for h in horizons]]
                             for split in ("test", "novel")]))
        tables.append(Table("task-independent ceiling: the expected SR of a planner that reads the true states and "
                            "knows what every step does but no task (uniform among the sequences that lead from start "
                            "to goal; exact, no data; percent)", ["split", *[f"T={h}" for h in horizons]],
                            [[split, *[f"{independent_ceiling(split, h):.1f}" for h in horizons]]
                             for split in ("test", "novel")]))
    stem = "grounded-quick" if args.quick else "grounded"
    plot = bar_plot(args.out / f"{stem}.png", "SR by decoding and split", list(SPLITS),
                    {n: [float(np.mean([m["sr"] for m in metrics[n][s]])) for s in SPLITS] for n in names}, "SR (%)")
    decoding = [f"{p} (decoding.method {m.model.config.decoding.method})" for p, m in zip(args.model, models)]
    notes = [f"model: {', '.join(decoding)}, chosen on val; grounded weights "
             f"{dataclasses.asdict(models[0].model.config.decoding.grounded)}, fixed before any measurement",
             "val and novel-val choose; test and novel are reported once for this configuration. novel: episodes of "
             "the held-out tasks, made only of steps the model knows, in orders no training window shows; novel-val: "
             f"the same tasks' episodes from data seed (the folder's seed) + {NOVEL_VAL_SEED}",
             "true states: the tabletop's hidden symbolic states read without error in place of the state head, through "
             "the same search and step-effect model (learned from descriptions); an upper reference, not a deployable "
             "planner"]
    if len(models) > 1:
        notes.append("± is the population std over the folders' seeds and describes spread, not uncertainty; the "
                     "verdicts resample episodes within each seed")
    path = write_report(args.out / f"{stem}.md", "Tasks never trained on: state-grounded decoding", command,
                        seeds, tables, notes, plot)
    return [path, plot]
