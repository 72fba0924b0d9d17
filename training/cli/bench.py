"""`planllm bench NAME [--quick] [--out bench/results] ...`: run one benchmark, write its table and plot.

NAME is one of quality, openvocab, latency, train, gpu, textenc, grounded, horizons, baselines (one module each in
training/benchmarks/; latency in planllm_ros/tools/). Each writes `OUT/<name>[-quick].md` (header:
machine, date, versions, code version, seeds and the exact command) and, all but baselines, a
PNG plot beside it. --quick is CI-sized (about a minute on two cores); without it the benchmark
runs at the size recorded in bench/results/.

Results come only from a commit: a full run refuses a working tree whose tracked files have
uncommitted changes, unless --allow-dirty, which the results header then marks. --quick runs are
smoke tests, never published, and run anywhere (their header marks a dirty tree too).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from planllm_ros.cli_dispatch import Commands, load

BENCHMARKS: Commands = {
    "quality": ("training.benchmarks.quality", "full model vs the paper's ablations: SR, mAcc, mIoU over seeds"),
    "openvocab": ("training.benchmarks.openvocab", "open vocabulary: paraphrased labels, novel tasks, other label sets"),
    "latency": ("planllm_ros.tools.latency", "planner per-stage latency per backend, node end to end over DDS, 30 Hz drops"),
    "train": ("training.benchmarks.train_cost", "training samples/s and peak memory, stage 1 and 2, one vs two processes"),
    "gpu": ("training.benchmarks.gpu", "the GPU check: 7B-shaped decode vs the bandwidth floor, prefill, LoRA training, merge, the Planner on CUDA"),
    "textenc": ("training.benchmarks.text_encoders", "text encoders: label -> paraphrase top-1, open-vocabulary SR ceiling, size, CPU latency"),
    "grounded": ("training.benchmarks.grounded", "tasks never trained on: state-grounded decoding vs Viterbi, the state head's error"),
    "horizons": ("training.benchmarks.horizons", "plans whose number of steps nobody gives: the model chooses T, per true T 1..6"),
    "baselines": ("training.benchmarks.tabletop_baselines", "tabletop domain: simple planners, the exact ceiling, split overlap, render speed"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    for name, (_, help_text) in BENCHMARKS.items():
        bench = sub.add_parser(name, help=help_text, description=help_text)
        bench.add_argument("--quick", action="store_true", help="CI-sized run (seconds to a minute or two)")
        bench.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")
        bench.add_argument("--threads", type=int, default=1,
                           help="torch threads of this process (default 1: the machine is shared)")
        bench.add_argument("--allow-dirty", action="store_true",
                           help="run although tracked files have uncommitted changes (the results header says so)")
        bench.set_defaults(_parser=bench, _module=load(BENCHMARKS, name, bench))


def command_line(args: argparse.Namespace) -> str:
    """The exact command, every option spelled out (defaults included), for the results header."""
    words = ["planllm", "bench", args.benchmark]
    for action in args._parser._actions:
        if not action.option_strings or action.dest == "help" or action.help == argparse.SUPPRESS:
            continue  # hidden options belong to a benchmark's own worker processes
        value = getattr(args, action.dest)
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            words += [flag] if value else []
        elif isinstance(action, argparse._AppendAction):
            for item in value or []:
                words += [flag, str(item)]
        elif value is not None:
            words += [flag, *(str(v) for v in value)] if isinstance(value, list) else [flag, str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    import torch

    from planllm_ros.model.config import ConfigError as ModelConfigError
    from training.benchmarks.report import DirtyTreeError, require_committed
    from training.datasets.base import DatasetError
    from training.train.checkpoint import CheckpointError
    from training.train.config import ConfigError

    if args.threads < 1:
        print(f"planllm bench: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    if not args.quick:
        try:
            require_committed(args.allow_dirty)
        except DirtyTreeError as error:
            print(f"planllm bench {args.benchmark}: {error}", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    command = command_line(args)
    try:
        written = args._module.run(args, command)
    except (ConfigError, ModelConfigError, CheckpointError, DatasetError, FileNotFoundError) as error:
        print(f"planllm bench {args.benchmark}: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0
