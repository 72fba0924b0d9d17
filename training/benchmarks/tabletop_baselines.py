"""`planllm bench baselines`: the measured difficulty of the tabletop domain.

    planllm bench baselines     (train 4800, test 1000 samples; --quick: 240 and 60)

Per horizon, on the test split of the 12 seen tasks: the simple planners and the exact ceiling
of training/tabletop/baselines.py, and the ceiling's planner on the test samples of every
benchmark seed (the ceiling is an expectation; one seed's samples score above or below it by
chance, and the rows say by how much). Notes give
how much the novel split (held-out tasks) overlaps training and the renderer's speed. Writes
`OUT/tabletop-baselines[-quick].md`, tables only.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np

from training.benchmarks.report import Table, write_report
from training.evaluation.metrics import procedure_metrics
from training.tabletop.baselines import (exact_ceiling, first_last_frequent, nearest_neighbour, oracle_task_random,
                                         seen_window_table, state_planner)
from training.tabletop.dataset import load_tabletop, make_episode, windows
from training.tabletop.renderer import make_scene, render
from training.tabletop.tasks import SEEN_TASKS, novel_overlap

CEILING = "exact ceiling: SR-optimal planner reading the true states (expected over the split's windows)"
OPTIMAL_SEEDS = (0, 1, 2)  # the benchmark seeds (planllm bench quality): the optimal planner on each one's samples


def on_samples(seed: int, n_test: int) -> str:
    return f"the same planner on the {n_test} test samples of data seed {seed}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--horizons", type=int, nargs="+", default=[3, 4], help="steps per sample (default 3 4)")
    parser.add_argument("--seed", type=int, default=0, help="data seed of every split (default 0)")
    parser.add_argument("--optimal-seeds", type=int, nargs="+", default=list(OPTIMAL_SEEDS),
                        help="data seeds whose test samples the ceiling's planner is also scored on (default 0 1 2)")
    parser.add_argument("--train-samples", type=int, default=None, help="default 4800; quick 240")
    parser.add_argument("--test-samples", type=int, default=None, help="default 1000; quick 60")
    parser.add_argument("--novel-samples", type=int, default=None,
                        help="novel split size for the measured overlap (default: --test-samples)")
    parser.add_argument("--cache-dir", default=None, help="feature cache (default ~/.cache/planllm_ros)")
    parser.add_argument("--render-images", type=int, default=None,
                        help="images per render-speed measurement (default 400; quick 20)")


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


def run_baselines(horizons, seed: int, n_train: int, n_test: int, cache_dir,
                  optimal_seeds=OPTIMAL_SEEDS) -> dict[int, dict[str, dict]]:
    results = {}
    for horizon in horizons:
        train = load_tabletop("train", horizon, seed, n_train, cache_dir=cache_dir)
        test = load_tabletop("test", horizon, seed, n_test, cache_dir=cache_dir)
        gt = np.stack([s.steps for s in test.samples])
        table = seen_window_table(horizon)
        results[horizon] = {
            "first/last (logistic regression) + most frequent sequence": procedure_metrics(first_last_frequent(train, test), gt),
            "oracle-task random order": procedure_metrics(oracle_task_random(test, seed), gt),
            "nearest neighbour over [start, goal, goal - start]": procedure_metrics(nearest_neighbour(train, test), gt),
            "nearest neighbour over [start, goal] only": procedure_metrics(nearest_neighbour(train, test, False), gt),
            CEILING: exact_ceiling(table),
        }
        for other in dict.fromkeys([seed, *optimal_seeds]):
            plans = state_planner("test", horizon, other, n_test, table)
            results[horizon][on_samples(other, n_test)] = procedure_metrics(plans.pred, plans.gt)
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


def run(args: argparse.Namespace, command: str) -> list[Path]:
    n_train = args.train_samples or (240 if args.quick else 4800)
    n_test = args.test_samples or (60 if args.quick else 1000)
    n_novel = args.novel_samples or n_test
    results = run_baselines(args.horizons, args.seed, n_train, n_test, args.cache_dir, args.optimal_seeds)
    overlap = [f"T={h}: {100 * float(novel_overlap(h)):.1f} % of the held-out tasks' windows can occur in a training "
               f"window (exact, any training size and seed); {100 * split_overlap(h, args.seed, n_train, n_novel):.1f} % "
               f"of {n_novel} novel samples have the steps of one of the {n_train} training samples"
               for h in args.horizons]
    speed = render_speed(args.render_images or (20 if args.quick else 400))
    notes = [f"splits: train {n_train} and test {n_test} samples of the 12 seen tasks, data seed {args.seed}; "
             "features: the frozen default backbone (training/tabletop/features.py), average-pooled to one vector",
             "exact ceiling: the optimal planner's expected score over draws of the test split, not a bound on "
             "one draw; the rows below it score that very planner on the test samples of each data seed (no images "
             "or training enter it), which land above or below the expectation by chance",
             "novel split (held-out tasks, not used here): " + "; ".join(overlap),
             "render speed (images/s): " + ", ".join(f"{k}: {v:.0f}" for k, v in speed.items())]
    output = tables(results, n_test)
    for table in output:
        print(table.markdown() + "\n")
    print("\n".join(notes))
    stem = "tabletop-baselines" + ("-quick" if args.quick else "")
    return [write_report(args.out / f"{stem}.md", "Tabletop domain: simple planners and the exact ceiling", command,
                         [args.seed], output, notes)]
