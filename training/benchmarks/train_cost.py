"""`planllm bench train`: training throughput and peak memory, stage 1 and stage 2, one vs two processes.

Each measurement is a fresh `planllm train`-equivalent run of the tiny tabletop preset on the
CPU with only that stage (`train.stages=[S]`; stage 2 alone does the same work per step as
stage 2 after stage 1: LoRA on, L_MIM + L_ASC + L_SD), started either as one process or under
`torchrun --standalone --nproc_per_node 2` (gloo), through training.train.trainer.Trainer itself.
samples/s = training samples x epochs / wall time of Trainer.fit(), which includes one
validation pass and one checkpoint per epoch; peak memory is each process's peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from training.benchmarks.report import Table, bar_plot, write_report
from training.benchmarks.runs import QUICK_OVERRIDES, run_config

FULL_SIZE = ("data.train_samples=600", "data.eval_samples=64", "train.batch_size=32")
STAGES = (1, 2)
PROCESSES = (1, 2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=None, help="epochs per measured stage (default 6; quick 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", nargs="+", type=int, choices=STAGES, default=list(STAGES))
    parser.add_argument("--processes", nargs="+", type=int, choices=PROCESSES, default=list(PROCESSES),
                        help="1: one process; 2: torchrun --nproc_per_node 2 (gloo)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", type=int, choices=STAGES, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)


def overrides(quick: bool, stage: int, epochs: int, seed: int) -> list[str]:
    return [*(QUICK_OVERRIDES if quick else FULL_SIZE), f"train.stages=[{stage}]", f"train.stage{stage}.epochs={epochs}",
            f"train.seed={seed}", "train.progress=false", "train.precision=fp32"]


def worker(args: argparse.Namespace) -> None:
    """One process of a measurement (rank 0 writes the result JSON)."""
    from training.train import distributed
    from training.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    config = run_config("tabletop-tiny", overrides(args.quick, args.stage, args.epochs, args.seed))
    ctx = distributed.init("cpu")
    try:
        with tempfile.TemporaryDirectory(prefix="planllm-train-bench-") as out:
            trainer = Trainer(config, out, ctx)
            distributed.barrier(ctx)
            began = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - began
        rss = torch.tensor([[int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)]], dtype=torch.int64)
        peaks = distributed.all_gather_rows(ctx, rss)[:, 0] / 1024.0
        if ctx.is_main:
            samples = len(trainer.train_set) * args.epochs
            args.result.write_text(json.dumps({
                "stage": args.stage, "processes": ctx.world_size, "samples": samples, "seconds": seconds,
                "samples_per_s": samples / seconds, "peak_rss_mb": [float(p) for p in peaks]}))
    finally:
        distributed.shutdown()


def measure(args: argparse.Namespace, stage: int, processes: int, result: Path) -> dict:
    """Start one measurement as 1 process or under torchrun; its result."""
    inner = ["-m", "training.benchmarks.train_cost", "--worker", "--stage", str(stage), "--epochs", str(args.epochs),
             "--seed", str(args.seed), "--threads", str(args.threads), "--result", str(result)]
    inner += ["--quick"] if args.quick else []
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                          str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run([sys.executable, *launcher, *inner], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"train benchmark: stage {stage} with {processes} process(es) failed "
                           f"(exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(result.read_text())


def run(args: argparse.Namespace, command: str) -> list[Path]:
    from training.train.splits import load_split

    args.epochs = args.epochs or (1 if args.quick else 6)
    config = run_config("tabletop-tiny", overrides(args.quick, 1, args.epochs, args.seed))
    for split in ("train", "val"):  # build the feature cache once, so no measured process computes it
        load_split(config.data, split, config.visual())
    results = []
    with tempfile.TemporaryDirectory(prefix="planllm-train-bench-") as tmp:
        for stage in args.stages:
            for processes in args.processes:
                result = measure(args, stage, processes, Path(tmp) / f"s{stage}-p{processes}.json")
                print(f"train stage {stage}, {processes} process(es): {result['samples_per_s']:.1f} samples/s, "
                      f"peak RSS {result['peak_rss_mb']} MB", flush=True)
                results.append(result)
    table = Table(f"tabletop-tiny on the CPU, {args.epochs} epoch(s) per stage, {config.data.train_samples} training "
                  f"samples, batch {config.train.batch_size} per process, {args.threads} torch thread(s) per process",
                  ["stage", "processes", "samples/s", "wall time of fit (s)", "peak RSS per process (MB)",
                   "peak RSS total (MB)"])
    for r in results:
        table.rows.append([str(r["stage"]), str(r["processes"]), f"{r['samples_per_s']:.1f}", f"{r['seconds']:.1f}",
                           " / ".join(f"{p:.0f}" for p in r["peak_rss_mb"]), f"{sum(r['peak_rss_mb']):.0f}"])
    stem = "train-quick" if args.quick else "train"
    series = {f"{p} process{'es' if p > 1 else ''}": [r["samples_per_s"] for r in results if r["processes"] == p]
              for p in args.processes}
    plot = bar_plot(args.out / f"{stem}.png", "Training throughput (CPU, tabletop-tiny)",
                    [f"stage {s}" for s in args.stages], series, "samples/s")
    notes = [f"config: `tabletop-tiny` with {' '.join(overrides(args.quick, 'S', args.epochs, args.seed))}",
             "two processes: `torchrun --standalone --nproc_per_node 2` (DDP over gloo), the batch size is per process",
             "samples/s counts training samples only; the timed Trainer.fit() also validates and checkpoints once "
             "per epoch; the feature cache was built before timing",
             "peak RSS is the process's lifetime peak: it includes set-up (text encoder, frozen LLM, features), "
             "which dominates for this tiny model, so stage 1 and stage 2 can show the same figure",
             f"this machine has {os.cpu_count()} CPU core(s), shared with other work while this ran"]
    report = write_report(args.out / f"{stem}.md", "Training cost: stage 1 and stage 2, one vs two processes",
                          command, [args.seed], [table], notes, plot)
    return [report, plot]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the measured processes (`python -m training.benchmarks.train_cost --worker ...`)."""
    parser = argparse.ArgumentParser(description="one measured process of `planllm bench train`")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if not args.worker or args.result is None:
        parser.error("run the benchmark with `planllm bench train`; this entry point is for its worker processes")
    worker(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
