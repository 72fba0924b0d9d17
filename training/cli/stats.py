"""`planllm data stats`: how many T-step samples (and videos, steps, tasks) each split of a
benchmark gives with a given features directory (training/datasets/stats.py)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.datasets.base import DatasetError
from training.datasets.benchmarks import READERS
from training.datasets.stats import benchmark_stats, format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=sorted(READERS), help="benchmark to count")
    parser.add_argument("--root", required=True, type=Path, help="the dataset's annotation directory")
    parser.add_argument("--features", required=True, type=Path, help="directory of per-video feature files")
    parser.add_argument("--horizon", required=True, type=int, help="steps per sample (T)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--skip-missing-features", action="store_true",
                        help="count videos without a feature file instead of failing on the first one")


def run(args: argparse.Namespace) -> int:
    try:
        stats = benchmark_stats(args.dataset, args.root, args.features, args.horizon, args.skip_missing_features)
    except (DatasetError, ValueError) as err:
        print(f"planllm data stats: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=2) if args.json else format_table(stats))
    return 0
