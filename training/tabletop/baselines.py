"""Measured difficulty of the tabletop domain: simple planners on the test split.

    python -m training.tabletop.baselines --out bench/results/tabletop-baselines.md

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
- state oracle (a ceiling, not a planner): reads the true symbolic start and goal states and
  the task, and answers the most frequent training sequence between exactly those states; what
  it misses is the ambiguity of the partial orders, which no image-based planner can resolve.
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from training.metrics import procedure_metrics
from training.tabletop.dataset import make_episode, windows
from training.tabletop.renderer import make_scene, render
from training.tabletop.tasks import SEEN_TASKS, TASKS
from training.tabletop.world import STEP_INDEX


def _pairs(ds, with_difference: bool = True) -> np.ndarray:
    """(B, 3D) [start, goal, goal - start], each L2-normalised ((B, 2D) without the difference)."""
    start = np.stack([s.start for s in ds.samples])
    goal = np.stack([s.goal for s in ds.samples])
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


def first_last_frequent(train, test) -> np.ndarray:
    xa, xb = _pairs(train), _pairs(test)
    mean, std = xa.mean(0), xa.std(0) + 1e-6
    xa, xb = (xa - mean) / std, (xb - mean) / std
    seqs = [tuple(int(v) for v in s.steps) for s in train.samples]
    n = train.vocab.num_steps
    with torch.no_grad():
        first = _logistic_regression(xa, np.array([s[0] for s in seqs]), n)(torch.from_numpy(xb)).argmax(1).numpy()
        last = _logistic_regression(xa, np.array([s[-1] for s in seqs]), n)(torch.from_numpy(xb)).argmax(1).numpy()
    by_pair, by_first = Counter(), Counter()
    for s in seqs:
        by_pair[(s[0], s[-1], s)] += 1
        by_first[(s[0], s)] += 1
    overall = Counter(seqs).most_common(1)[0][0]
    preds = []
    for f, l in zip(first.tolist(), last.tolist()):
        match = [(c, s) for (a, b, s), c in by_pair.items() if a == f and b == l] or \
                [(c, s) for (a, s), c in by_first.items() if a == f]
        preds.append(max(match)[1] if match else overall)
    return np.array(preds, dtype=np.int64)


def oracle_task_random(test, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    preds = []
    for s in test.samples:
        plan = TASKS[s.task].sample_plan(rng)
        k = int(rng.integers(len(plan) - test.horizon + 1))
        preds.append([STEP_INDEX[key] for key in plan[k:k + test.horizon]])
    return np.array(preds, dtype=np.int64)


def _state_key(ep, k: int, horizon: int):
    freeze = lambda state: tuple(sorted(state.items()))  # noqa: E731
    return ep.task, freeze(ep.states[k]), freeze(ep.states[k + horizon])


def state_oracle(split_train: str, split_test: str, horizon: int, seed: int, n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """(pred, gt) of the symbolic-state ceiling (see module docstring)."""
    table: dict = {}
    eps, picked = windows(split_train, horizon, seed, n_train)
    for e, k in picked:
        table.setdefault(_state_key(eps[e], k, horizon), Counter())[eps[e].plan[k:k + horizon]] += 1
    eps, picked = windows(split_test, horizon, seed, n_test)
    rng = np.random.default_rng(seed)
    pred, gt = [], []
    for e, k in picked:
        seen = table.get(_state_key(eps[e], k, horizon))
        pred.append(seen.most_common(1)[0][0] if seen else tuple(rng.integers(len(STEP_INDEX), size=horizon)))
        gt.append(eps[e].plan[k:k + horizon])
    return np.array(pred, dtype=np.int64), np.array(gt, dtype=np.int64)


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


def run_baselines(horizons, seed: int, n_train: int, n_test: int, cache_dir) -> dict[int, dict[str, dict]]:
    from training.tabletop.dataset import load_tabletop

    results = {}
    for horizon in horizons:
        train = load_tabletop("train", horizon, seed, n_train, cache_dir=cache_dir)
        test = load_tabletop("test", horizon, seed, n_test, cache_dir=cache_dir)
        gt = np.stack([s.steps for s in test.samples])
        ceiling_pred, ceiling_gt = state_oracle("train", "test", horizon, seed, n_train, n_test)
        results[horizon] = {
            "first/last (logistic regression) + most frequent sequence": procedure_metrics(first_last_frequent(train, test), gt),
            "oracle-task random order": procedure_metrics(oracle_task_random(test, seed), gt),
            "nearest neighbour over [start, goal, goal - start]": procedure_metrics(nearest_neighbour(train, test), gt),
            "nearest neighbour over [start, goal] only": procedure_metrics(nearest_neighbour(train, test, False), gt),
            "state oracle (ceiling: true symbolic states + task)": procedure_metrics(ceiling_pred, ceiling_gt),
        }
    return results


def table(results: dict[int, dict[str, dict]]) -> str:
    lines = ["| T | planner | SR | mAcc | mIoU (peer, bitwise) | mIoU (set) |", "|---|---|---|---|---|---|"]
    for horizon, rows in results.items():
        for name, m in rows.items():
            lines.append(f"| {horizon} | {name} | {m['sr']:.1f} | {m['macc']:.1f} | {m['miou']:.1f} | {m['miou_set']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizons", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-samples", type=int, default=None, help="default: the train split's default size")
    parser.add_argument("--test-samples", type=int, default=None, help="default: the test split's default size")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--render-images", type=int, default=400, help="images per render-speed measurement")
    args = parser.parse_args(argv)
    from training.tabletop.dataset import DEFAULT_SAMPLES

    torch.set_num_threads(1)  # a shared 2-core box: more threads only spin-wait (L-BFGS makes many tiny calls)
    n_train = args.train_samples or DEFAULT_SAMPLES["train"]
    n_test = args.test_samples or DEFAULT_SAMPLES["test"]
    results = run_baselines(args.horizons, args.seed, n_train, n_test, args.cache_dir)
    speed = render_speed(args.render_images)
    print(f"# {datetime.date.today()} on {platform.node()} ({platform.processor() or platform.machine()}, "
          f"{multiprocessing.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}); "
          f"train {n_train} / test {n_test} samples, seed {args.seed}")
    print(table(results))
    print("render speed (images/s): " + ", ".join(f"{k}: {v:.0f}" for k, v in speed.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
