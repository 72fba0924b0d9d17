"""Measured difficulty of the tabletop domain: simple planners and the exact ceiling on the test split.

    python -m training.tabletop.baselines --train-samples 4800 --test-samples 1000 \
        --out bench/results/tabletop-baselines.md

Planners (none sees the test labels except where said):
- first/last + most frequent: a multinomial logistic regression on the (start, goal) features
  predicts the first and the last step; the plan is the most frequent training sequence with
  that (first, last) pair (falling back to the most frequent one with that first step).
- oracle-task random order: GIVEN THE TRUE TASK (an oracle), draw a random valid plan of the
  task (options, alternatives and a random order consistent with its partial order) and a
  random window of T steps from it.
- nearest neighbour: the steps of the training sample whose (start, goal) features are closest:
  cosine similarity of [start, goal, goal - start], each L2-normalised (the difference cancels
  what start and goal share -- layout, cloth, light -- and keeps what the steps changed). The
  plain [start, goal] variant is reported too.
- the exact ceiling (not a planner one could build from images): the best SR any planner can
  reach, even one that reads the true symbolic start and goal states. Several step sequences
  lead from one state pair to another (commuting steps), so it is below 100: it is the sum over
  (start, goal) state pairs of the largest P(pair, sequence), computed exactly from every plan
  of every seen task with its probability under the generator and the windows the split
  sampler takes (`window_distribution`). The planner that reaches it answers that sequence.

Features are the frozen backbone's (training.tabletop.features). A spatial map (L, C) is
average-pooled to one C-vector here: these planners are baselines on pooled features.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shlex
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from training.bench.report import DirtyTreeError, Table, require_committed, write_report
from training.metrics import procedure_metrics
from training.tabletop.dataset import make_episode, windows
from training.tabletop.renderer import make_scene, render
from training.tabletop.tasks import SEEN_TASKS, TASKS, Task, novel_overlap
from training.tabletop.world import STEP_INDEX, STEPS, State, apply

StateKey = tuple  # a state frozen as its sorted (object, ObjectState) items
Windows = dict[tuple[StateKey, StateKey], dict[tuple[int, ...], Fraction]]


def _pooled(feature: np.ndarray) -> np.ndarray:
    """One vector per image: a spatial map (L, C) is averaged over its L locations."""
    feature = np.asarray(feature, dtype=np.float32)
    return feature.mean(axis=0) if feature.ndim == 2 else feature


def _pairs(ds, with_difference: bool = True) -> np.ndarray:
    """(B, 3D) [start, goal, goal - start], each L2-normalised ((B, 2D) without the difference)."""
    start = np.stack([_pooled(s.start) for s in ds.samples])
    goal = np.stack([_pooled(s.goal) for s in ds.samples])
    norm = lambda x: x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)  # noqa: E731
    parts = [norm(start), norm(goal)] + ([norm(goal - start)] if with_difference else [])
    return np.concatenate(parts, axis=1).astype(np.float32)


def nearest_neighbour(train, test, with_difference: bool = True) -> np.ndarray:
    a = torch.from_numpy(_pairs(train, with_difference))
    b = torch.from_numpy(_pairs(test, with_difference))
    nearest = (b @ a.T).argmax(dim=1).numpy()
    return np.stack([train.samples[i].steps for i in nearest])


def _logistic_regression(x: np.ndarray, y: np.ndarray, num_classes: int, weight_decay: float = 1e-3) -> torch.nn.Linear:
    """Full-batch L-BFGS softmax regression (standardised inputs are expected)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], num_classes)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt) + weight_decay * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model


def fit_first_last_frequent(train):
    """The first/last + most frequent planner fit on `train`: a function from a dataset to its
    plans (fit once, apply to several splits)."""
    xa = _pairs(train)
    mean, std = xa.mean(0), xa.std(0) + 1e-6
    xa = (xa - mean) / std
    seqs = [tuple(int(v) for v in s.steps) for s in train.samples]
    n = train.vocab.num_steps
    first_model = _logistic_regression(xa, np.array([s[0] for s in seqs]), n)
    last_model = _logistic_regression(xa, np.array([s[-1] for s in seqs]), n)
    by_pair, by_first = Counter(), Counter()
    for s in seqs:
        by_pair[(s[0], s[-1], s)] += 1
        by_first[(s[0], s)] += 1
    overall = Counter(seqs).most_common(1)[0][0]

    def plan(test) -> np.ndarray:
        xb = torch.from_numpy((_pairs(test) - mean) / std)
        with torch.no_grad():
            first, last = first_model(xb).argmax(1).numpy(), last_model(xb).argmax(1).numpy()
        preds = []
        for f, l in zip(first.tolist(), last.tolist()):
            match = [(c, s) for (a, b, s), c in by_pair.items() if a == f and b == l] or \
                    [(c, s) for (a, s), c in by_first.items() if a == f]
            preds.append(max(match)[1] if match else overall)
        return np.array(preds, dtype=np.int64)

    return plan


def first_last_frequent(train, test) -> np.ndarray:
    return fit_first_last_frequent(train)(test)


def oracle_task_random(test, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    preds = []
    for s in test.samples:
        plan = TASKS[s.task].sample_plan(rng)
        k = int(rng.integers(len(plan) - test.horizon + 1))
        preds.append([STEP_INDEX[key] for key in plan[k:k + test.horizon]])
    return np.array(preds, dtype=np.int64)


def _freeze(state: State) -> StateKey:
    return tuple(sorted(state.items()))


def window_distribution(tasks: list[Task], horizon: int) -> Windows:
    """P(start state, goal state, step ids) of one window of a split over `tasks`, exactly.

    The split sampler (dataset.windows) takes the tasks in turn and every window of each
    episode, so a window of plan p of task t has probability P(p | t) / (number of tasks x
    expected windows per episode). Plans share most of their states, so each (state, step)
    transition is applied once; each task's window weights are summed as integers over its
    common denominator.
    """
    dists = [task.plan_distribution() for task in tasks]
    windows_per_episode = sum(p * max(0, len(plan) - horizon + 1) for d in dists for plan, p in d.items()) / len(dists)
    table: Windows = {}
    for task, dist in zip(tasks, dists):
        scale = math.lcm(*(p.denominator for p in dist.values()))
        states = [task.start_state()]  # index = state id
        ids = {_freeze(states[0]): 0}
        after: dict[tuple[int, str], int] = {}  # (state id, step) -> state id
        counts: Counter = Counter()
        for plan, p in dist.items():
            keys = [0]
            for key in plan:
                if (keys[-1], key) not in after:
                    state = apply(states[keys[-1]], STEPS[STEP_INDEX[key]])
                    if _freeze(state) not in ids:
                        ids[_freeze(state)] = len(states)
                        states.append(state)
                    after[(keys[-1], key)] = ids[_freeze(state)]
                keys.append(after[(keys[-1], key)])
            weight = p.numerator * (scale // p.denominator)
            step_ids = tuple(STEP_INDEX[k] for k in plan)
            for k in range(len(plan) - horizon + 1):
                counts[(keys[k], keys[k + horizon], step_ids[k:k + horizon])] += weight
        frozen = list(ids)
        norm = scale * len(dists) * windows_per_episode
        for (first, last, seq), count in counts.items():
            seqs = table.setdefault((frozen[first], frozen[last]), {})
            seqs[seq] = seqs.get(seq, Fraction(0)) + count / norm
    return table


def best_sequences(table: Windows) -> dict[tuple[StateKey, StateKey], tuple[int, ...]]:
    """The most likely step sequence of each state pair: what the ceiling's planner answers."""
    return {pair: max(seqs, key=seqs.__getitem__) for pair, seqs in table.items()}


def exact_ceiling(table: Windows) -> dict[str, float]:
    """The expected metrics (percent) of the planner that answers `best_sequences`: its SR is the
    best any planner can reach from the true states, sum over pairs of max P(pair, sequence)."""
    best = best_sequences(table)
    entries = [(best[pair], seq, p) for pair, seqs in table.items() for seq, p in seqs.items()]
    weights = np.array([float(p) for _, _, p in entries])
    per_entry = [procedure_metrics(np.array([b]), np.array([s])) for b, s, _ in entries]
    metrics = {name: float(weights @ np.array([m[name] for m in per_entry])) / weights.sum() for name in per_entry[0]}
    metrics["sr"] = 100.0 * float(sum(max(seqs.values()) for seqs in table.values()))  # exact, not via floats
    return metrics


def state_planner(split: str, horizon: int, seed: int, num_samples: int, table: Windows) -> tuple[np.ndarray, np.ndarray]:
    """(pred, gt) of the ceiling's planner on the split's real windows (what it scores on these samples)."""
    best = best_sequences(table)
    episodes, picked = windows(split, horizon, seed, num_samples)
    pred = [best[(_freeze(episodes[e].states[k]), _freeze(episodes[e].states[k + horizon]))] for e, k in picked]
    gt = [episodes[e].plan[k:k + horizon] for e, k in picked]
    return np.array(pred, dtype=np.int64), np.array(gt, dtype=np.int64)


def split_overlap(horizon: int, seed: int, n_train: int, n_novel: int) -> float:
    """Share of the novel split's samples whose step sequence is that of some training sample."""
    train_eps, train_picked = windows("train", horizon, seed, n_train)
    trained = {train_eps[e].plan[k:k + horizon] for e, k in train_picked}
    novel_eps, novel_picked = windows("novel", horizon, seed, n_novel)
    return sum(novel_eps[e].plan[k:k + horizon] in trained for e, k in novel_picked) / len(novel_picked)


def _render_many(count: int) -> tuple[int, float]:
    """Render `count` fresh episodes' goal images; returns (count, CPU seconds this process used)."""
    cpu = time.process_time()
    for i in range(count):
        ep = make_episode(SEEN_TASKS[i % len(SEEN_TASKS)], 10_000 + i)
        render(ep.states[-1], make_scene(tuple(ep.states[0]), ep.seed), 0)
    return count, time.process_time() - cpu


def render_speed(images: int = 400, processes: int = 2) -> dict[str, float]:
    """Images/s of full renders, each of a fresh episode (plan, scene and image), in `processes`
    worker processes: by wall clock, and per CPU-second times `processes` (what `processes`
    dedicated cores give; on a shared machine the wall-clock number also counts others' load)."""
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_render_many, [images // processes] * processes)
    done, cpu = sum(n for n, _ in parts), sum(c for _, c in parts)
    return {f"wall clock, {processes} processes": done / (time.perf_counter() - start),
            f"per CPU-second x {processes} cores": processes * done / cpu}


CEILING = "exact ceiling: SR-optimal planner reading the true states (expected over the split's windows)"
CEILING_ON_SPLIT = "the same planner on these test samples"


def run_baselines(horizons, seed: int, n_train: int, n_test: int, cache_dir) -> dict[int, dict[str, dict]]:
    from training.tabletop.dataset import load_tabletop

    results = {}
    for horizon in horizons:
        train = load_tabletop("train", horizon, seed, n_train, cache_dir=cache_dir)
        test = load_tabletop("test", horizon, seed, n_test, cache_dir=cache_dir)
        gt = np.stack([s.steps for s in test.samples])
        table = window_distribution([TASKS[i] for i in SEEN_TASKS], horizon)
        results[horizon] = {
            "first/last (logistic regression) + most frequent sequence": procedure_metrics(first_last_frequent(train, test), gt),
            "oracle-task random order": procedure_metrics(oracle_task_random(test, seed), gt),
            "nearest neighbour over [start, goal, goal - start]": procedure_metrics(nearest_neighbour(train, test), gt),
            "nearest neighbour over [start, goal] only": procedure_metrics(nearest_neighbour(train, test, False), gt),
            CEILING: exact_ceiling(table),
            CEILING_ON_SPLIT: procedure_metrics(*state_planner("test", horizon, seed, n_test, table)),
        }
    return results


def tables(results: dict[int, dict[str, dict]], n_test: int) -> list[Table]:
    out = []
    for horizon, rows in results.items():
        table = Table(f"T={horizon}: test split, {n_test} samples (percent)",
                      ["planner", "SR", "mAcc", "mIoU (peer, bitwise)", "mIoU (set)"])
        for name, m in rows.items():
            table.rows.append([name, *(f"{m[k]:.1f}" for k in ("sr", "macc", "miou", "miou_set"))])
        out.append(table)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizons", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--seed", type=int, default=0, help="data seed of every split (default 0)")
    parser.add_argument("--train-samples", type=int, default=None, help="default: the train split's default size")
    parser.add_argument("--test-samples", type=int, default=None, help="default: the test split's default size")
    parser.add_argument("--novel-samples", type=int, default=None,
                        help="novel split size for the measured overlap (default: --test-samples)")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--render-images", type=int, default=400, help="images per render-speed measurement")
    parser.add_argument("--out", type=Path, default=None, help="write the results file here (Markdown)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write --out although tracked files have uncommitted changes (the header says so)")
    args = parser.parse_args(argv)
    from training.tabletop.dataset import DEFAULT_SAMPLES

    if args.out is not None:
        try:
            require_committed(args.allow_dirty)
        except DirtyTreeError as error:
            print(f"training.tabletop.baselines: {error}", file=sys.stderr)
            return 2
    torch.set_num_threads(1)  # a shared 2-core box: more threads only spin-wait (L-BFGS makes many tiny calls)
    n_train = args.train_samples or DEFAULT_SAMPLES["train"]
    n_test = args.test_samples or DEFAULT_SAMPLES["test"]
    n_novel = args.novel_samples or n_test
    results = run_baselines(args.horizons, args.seed, n_train, n_test, args.cache_dir)
    overlap = [f"T={h}: {100 * float(novel_overlap(h)):.1f} % of the held-out tasks' windows can occur in a training "
               f"window (exact, any training size and seed); {100 * split_overlap(h, args.seed, n_train, n_novel):.1f} % "
               f"of {n_novel} novel samples have the steps of one of the {n_train} training samples"
               for h in args.horizons]
    speed = render_speed(args.render_images)
    notes = [f"splits: train {n_train} and test {n_test} samples of the 12 seen tasks, data seed {args.seed}; "
             "features: the frozen default backbone (training/tabletop/features.py), average-pooled to one vector",
             "novel split (held-out tasks, not used here): " + "; ".join(overlap),
             "render speed (images/s): " + ", ".join(f"{k}: {v:.0f}" for k, v in speed.items())]
    output = tables(results, n_test)
    command = shlex.join(["python", "-m", "training.tabletop.baselines", *(argv if argv is not None else sys.argv[1:])])
    if args.out is not None:
        print(f"wrote {write_report(args.out, 'Tabletop domain: simple planners and the exact ceiling', command, [args.seed], output, notes)}")
    for table in output:
        print(table.markdown() + "\n")
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
