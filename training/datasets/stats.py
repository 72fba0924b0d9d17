"""`planllm data stats`: how many T-step samples (and videos, steps, tasks) each split of a
benchmark gives with a given features directory: the first check after downloading or
simulating features (CrossTask, T=3: 12293 train / 2030 test with features covering every
annotation)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.datasets.annotations import SPLITS
from training.datasets.base import DatasetError
from training.datasets.benchmarks import READERS, load_benchmark_with_report, reader


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=sorted(READERS), help="benchmark to count")
    parser.add_argument("--root", required=True, type=Path, help="the dataset's annotation directory")
    parser.add_argument("--features", required=True, type=Path, help="directory of per-video feature files")
    parser.add_argument("--horizon", required=True, type=int, help="steps per sample (T)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--skip-missing-features", action="store_true",
                        help="count videos without a feature file instead of failing on the first one")


def benchmark_stats(name: str, root: Path, features: Path, horizon: int, skip_missing_features: bool = False) -> dict:
    """Per split: videos, samples, dropped windows, distinct steps and tasks in the samples; a
    split whose list file is absent (COIN train in the shared data) is reported as absent."""
    module = reader(name)
    result: dict = {"dataset": name, "horizon": horizon, "splits": {}}
    for split in SPLITS:
        split_file = Path(root) / module.SPLIT_FILES[split]
        if not split_file.is_file():
            result["splits"][split] = {"absent": str(split_file)}
            continue
        dataset, report = load_benchmark_with_report(name, root, features, split, horizon,
                                                     skip_missing_features=skip_missing_features)
        result["num_steps"], result["num_tasks"] = dataset.vocab.num_steps, dataset.vocab.num_tasks
        result["splits"][split] = {
            "samples": len(dataset),
            "videos": report.videos,
            "videos_without_features": report.videos_without_features,
            "videos_with_samples": len({s.video for s in dataset}),
            "windows": report.windows,
            "dropped_windows": report.dropped,
            "steps": len({int(i) for s in dataset for i in s.steps}),
            "tasks": len({s.task for s in dataset}),
            "feature_dim": report.feature_dim,
        }
        result["simulated_features"] = report.simulated
    return result


def format_table(stats: dict) -> str:
    header = (f"{stats['dataset']}  T={stats['horizon']}  vocabulary: {stats.get('num_steps', '?')} steps, "
              f"{stats.get('num_tasks', '?')} tasks")
    if stats.get("simulated_features"):
        header += "  (SIMULATED features: not comparable with published numbers)"
    lines = [header]
    columns = ("samples", "videos", "videos_without_features", "dropped_windows", "steps", "tasks", "feature_dim")
    lines.append("split  " + "  ".join(columns))
    for split, row in stats["splits"].items():
        if "absent" in row:
            lines.append(f"{split:<5}  absent: {row['absent']} not found")
        else:
            lines.append(f"{split:<5}  " + "  ".join(f"{row[c]!s:>{len(c)}}" for c in columns))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        stats = benchmark_stats(args.dataset, args.root, args.features, args.horizon, args.skip_missing_features)
    except (DatasetError, ValueError) as err:
        print(f"planllm data stats: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=2) if args.json else format_table(stats))
    return 0
