"""How many T-step samples (and videos, steps, tasks) each split of a benchmark gives with a
given features directory (`planllm data stats`): the first check after downloading or
simulating features (CrossTask, T=3: 12293 train / 2030 test with features covering every
annotation)."""
from __future__ import annotations

from pathlib import Path

from training.datasets.annotations import SPLITS
from training.datasets.benchmarks import load_benchmark_with_report, reader


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

