"""`planllm bench horizons`: plans whose number of steps nobody gives.

Test windows of every length T = 1..H (equal numbers each, per data seed) are planned by a model
folder with a state head, through the one pipeline, twice: told T (the benchmarks'
protocol, DecodingPolicy.horizon = T) and untold (horizon = AUTO: the model chooses,
planllm_ros.model.horizon). Reported overall and per true T: horizon accuracy, SR, mAcc and set
mIoU (training.evaluation.metrics.ragged_metrics: a plan of the wrong length fails SR and misses
the positions it does not reach). On the tabletop the same is computed for a planner that reads
the hidden true states and the exact window tables of every length (not a deployable planner:
an upper reference), untold too: the most likely sequence of any length, and the best of the
shortest. Verdicts (paired bootstrap resampling episodes) test the target SR(untold) >= 0.8 x
SR(told) per T.

Seeds: with one folder, the seeds are data seeds of the test windows (--seeds); with several
folders (one training run per seed), each folder plans the test windows of its own seed (its
config's data.seed, or --seeds given in the folders' order), and the tables pool them.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
from pathlib import Path

import numpy as np

from planllm_ros.model.horizon import AUTO
from training.benchmarks.grounded import load_grounded_folders
from training.benchmarks.report import Table, bar_plot, write_report
from training.benchmarks.stats import describe, paired_bootstrap
from training.evaluation.evaluate import predict_split
from training.evaluation.metrics import ragged_metrics
from training.train.horizon import mixed_split

TOLD, UNTOLD = "told T", "chooses T"
LIKELY, SHORTEST = "true states, most likely of any length", "true states, shortest"
RATIO = 0.8  # the target: untold SR at least this share of told SR, per T


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, nargs="+", default=[Path("models/tabletop-tiny")],
                        help="model folders with a state head (default models/tabletop-tiny); several: one per "
                             "training seed, each planning its own seed's test windows")
    parser.add_argument("--samples", type=int, default=None, help="test windows per T and seed (default 200; quick 10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="data seeds whose test windows are planned (one folder: default 0 1 2; several folders: "
                             "one per folder, in order, default each folder's data.seed)")
    parser.add_argument("--batch-size", type=int, default=100, help="samples per pipeline call (default 100)")


def _trimmed(ids: np.ndarray) -> list[list[int]]:
    return [[int(i) for i in row if i >= 0] for row in ids]


def run_seed(loaded, data, seed: int, samples: int, batch_size: int) -> dict:
    """Per true T: the truth, each planner's plans and each window's episode, on one data seed."""
    from training.tabletop.baselines import seen_window_table, untold_state_plans

    max_horizon = loaded.model.config.decoding.horizon.max_horizon
    data = dataclasses.replace(data, seed=seed)
    splits = mixed_split(data, "test", range(1, max_horizon + 1), samples, loaded.model.config.visual)
    out = {}
    for h, dataset in splits.items():
        plans = {}
        for name, horizon in ((TOLD, h), (UNTOLD, AUTO)):
            batches = predict_split(loaded, dataset, loaded.policy(captions=False, horizon=horizon), batch_size)
            plans[name] = [p for b in batches for p in _trimmed(b.step_ids)]
        if data.dataset == "tabletop":
            tables = {k: seen_window_table(k) for k in range(1, max_horizon + 1)}
            plans[LIKELY], plans[SHORTEST] = untold_state_plans("test", h, seed, len(dataset), tables)
        out[h] = {"gt": [list(s) for s in dataset.sequences()], "plans": plans,
                  "episodes": np.array([f"{seed}-{s.video}" for s in dataset.samples])}
    return out


def _success(plans: list, gt: list) -> np.ndarray:
    return 100.0 * np.array([list(p) == list(g) for p, g in zip(plans, gt)], dtype=np.float64)


def seed_models(args: argparse.Namespace) -> list[tuple[int, Path, object]]:
    """(data seed, folder, loaded folder): one folder on each of --seeds (default 0 1 2), or each
    of several folders on its own seed (--seeds in the folders' order, default each one's data.seed)."""
    models = load_grounded_folders(args, "horizons")
    if len(models) == 1:
        pairs = [(seed, args.model[0], models[0]) for seed in (args.seeds or [0, 1, 2])]
    else:
        seeds = args.seeds or [m.config.data.seed for m in models]
        if len(seeds) != len(models) or len(set(seeds)) != len(seeds):
            raise SystemExit(f"planllm bench horizons: {len(models)} --model folders need as many distinct seeds, "
                             f"one each; got {seeds}")
        pairs = list(zip(seeds, args.model, models))
    return pairs[:1] if args.quick else pairs


def run(args: argparse.Namespace, command: str) -> list[Path]:
    pairs = seed_models(args)
    data = pairs[0][2].config.data
    samples = args.samples or (10 if args.quick else 200)
    seeds = [seed for seed, _, _ in pairs]
    results = {seed: run_seed(m, copy.deepcopy(m.config.data), seed, samples, args.batch_size) for seed, _, m in pairs}
    horizons = sorted(results[seeds[0]])
    names = list(results[seeds[0]][horizons[0]]["plans"])

    def pooled(name: str, hs) -> dict[str, float]:
        return ragged_metrics([p for s in seeds for h in hs for p in results[s][h]["plans"][name]],
                              [g for s in seeds for h in hs for g in results[s][h]["gt"]])

    rows = {name: {h: pooled(name, [h]) for h in horizons} | {"all": pooled(name, horizons)} for name in names}
    columns = ["all", *horizons]
    tables = []
    for metric, title in (("horizon", "horizon accuracy"), ("sr", "SR"), ("macc", "mAcc"), ("miou_set", "set mIoU")):
        if metric == "horizon":
            shown = [n for n in names if n != TOLD]
        else:
            shown = names
        tables.append(Table(f"{data.dataset}: {title} (percent) by true T, {samples} test windows per T and seed, "
                            f"seeds {', '.join(map(str, seeds))}",
                            ["planner", *[f"T={c}" if c != "all" else "all T" for c in columns]],
                            [[n, *[f"{rows[n][c][metric]:.1f}" for c in columns]] for n in shown]))

    verdicts = Table(f"target per T: SR(chooses T) >= {RATIO} x SR(told T) (paired bootstrap resampling episodes)",
                     ["T", "SR chooses / told", f"SR(chooses) - {RATIO} x SR(told)", "verdict"])
    for h in [*horizons, "all"]:
        hs = horizons if h == "all" else [h]
        a = [np.concatenate([_success(results[s][k]["plans"][UNTOLD], results[s][k]["gt"]) for k in hs]) for s in seeds]
        b = [RATIO * np.concatenate([_success(results[s][k]["plans"][TOLD], results[s][k]["gt"]) for k in hs])
             for s in seeds]
        episodes = [np.concatenate([results[s][k]["episodes"] for k in hs]) for s in seeds]
        d = paired_bootstrap(a, b, episodes=episodes)
        told = rows[TOLD][h]["sr"]
        ratio = f"{rows[UNTOLD][h]['sr'] / told:.2f}" if told else "n/a (told SR 0)"
        verdict = "met" if d.low > 0 else ("missed" if d.high < 0 else "not distinguishable from the target")
        verdicts.rows.append([str(h), ratio, describe(d, UNTOLD, f"{RATIO} x {TOLD}"), verdict])
    tables.append(verdicts)

    stem = "horizons-quick" if args.quick else "horizons"
    plot = bar_plot(args.out / f"{stem}.png", "SR by true number of steps", [f"T={h}" for h in horizons],
                    {n: [rows[n][h]["sr"] for h in horizons] for n in names}, "SR (%)")
    folders = {path: (m, [s for s, p, _ in pairs if p == path]) for _, path, m in pairs}
    notes = [f"model: {path}, trained for T={m.model.config.horizon}, planning seed(s) {', '.join(map(str, s))}; "
             f"the choice of T: {dataclasses.asdict(m.model.config.decoding.horizon)} (fitted on val windows of every "
             "length: `planllm states --horizon-only`)" for path, (m, s) in folders.items()]
    notes += ["told T: the benchmarks' protocol; at the model's own T its usual decoding, at any other T the grounded "
              "search over the step decoder's position-free probabilities without the LLM (which writes plans of its T)",
              "one model folder; the seeds are data seeds of the test windows (their episodes differ), not retrained models"
              if len(folders) == 1 else
              "one folder per seed (retrained models), each planning the test windows of its own seed; the tables pool them"]
    if data.dataset == "tabletop":
        notes.append("true-state rows read the world's hidden symbolic states and the exact window tables of every "
                     "length: an upper reference for choosing T, not a planner one could deploy")
    path = write_report(args.out / f"{stem}.md", "Plans whose number of steps nobody gives", command, seeds, tables,
                        notes, plot)
    return [path, plot]
