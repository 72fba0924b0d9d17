"""Training logs: one long-format CSV, TensorBoard when it is installed, PNG curves per stage;
and the record of which code trained a model.

The CSV has one row per value (`stage, epoch, step, split, metric, value`), so loss terms that
exist only in some stages or variants need no schema. On `--resume` the rows written after the
checkpoint are dropped (`truncate_after`), so the log of a resumed run equals an uninterrupted one.
Only rank 0 logs.

A model is only reproducible if the code that trained it can be checked out again, and a config
alone does not say that: defaults change between commits. So every model folder the trainer
writes holds a training record (`write_training_record`): the commit, the code version (commit
plus a hash of the sources as they were on disk) and the tracked files that differed from the
commit. Benchmark tables and the exported model's card read it back (`read_training_record`).
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

from planllm_ros.export.model_card import TRAINING_RECORD_FILE

COLUMNS = ("stage", "epoch", "step", "split", "metric", "value")
REPO = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ("planllm_ros", "training")  # the code whose version keys results, cached scores and models


class RunLogger:
    def __init__(self, out_dir: Path, enabled: bool = True):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.csv_path = self.out_dir / "log.csv"
        self._tb = None
        if enabled:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))

    def log(self, stage: int, epoch: int, step: int, split: str, values: dict[str, float]) -> None:
        if not self.enabled or not values:
            return
        new_file = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(COLUMNS)
            for metric, value in values.items():
                writer.writerow([stage, epoch, step, split, metric, f"{float(value):.6g}"])
        if self._tb is not None:
            for metric, value in values.items():
                self._tb.add_scalar(f"stage{stage}/{split}/{metric}", float(value), step)

    def truncate_after(self, step: int) -> None:
        """Drop the rows logged after global step `step` (work a resumed run will redo)."""
        if not self.enabled or not self.csv_path.exists():
            return
        rows = read_log(self.csv_path)
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for row in rows:
                if int(row["step"]) <= step:
                    writer.writerow([row[c] for c in COLUMNS])
        os.replace(tmp, self.csv_path)

    def plot_stage(self, stage: int) -> Path | None:
        """Write curves-stage{N}.png: training losses, validation losses and validation metrics."""
        if not self.enabled or not self.csv_path.exists():
            return None
        return plot_curves(read_log(self.csv_path), stage, self.out_dir / f"curves-stage{stage}.png")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def plot_curves(rows: list[dict[str, str]], stage: int, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, dict[str, list[tuple[int, float]]]] = {
        f"stage {stage}: training losses": defaultdict(list),
        f"stage {stage}: validation losses": defaultdict(list),
        f"stage {stage}: validation metrics (%)": defaultdict(list),
    }
    titles = list(panels)
    for row in rows:
        if int(row["stage"]) != stage or row["metric"] == "lr" or row["split"] not in ("train", "val"):
            continue
        index = 0 if row["split"] == "train" else 1 if row["metric"].startswith("loss") else 2
        panels[titles[index]][row["metric"]].append((int(row["step"]), float(row["value"])))
    if not any(panels.values()):
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (title, curves) in zip(axes, panels.items()):
        for name, points in sorted(curves.items()):
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 20 else None, markersize=3, label=name)
        ax.set_title(title)
        ax.set_xlabel("optimiser step")
        if curves:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------ which code trained a model
def git_output(repo: Path, *args: str) -> str | None:
    """stdout of `git args` in `repo`, or None where git fails (no git, not a checkout)."""
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def uncommitted_files(repo: Path = REPO) -> list[str] | None:
    """Tracked files of `repo` that differ from its commit ([] = clean; untracked files do not
    count), or None when `repo` is not a git checkout and nothing can be told."""
    status = git_output(repo, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else [line[3:] for line in status.splitlines() if line.strip()]


def code_version(repo: Path = REPO) -> str:
    """"<commit>+<hash of the sources>": the commit, and a SHA-256 of every .py file of the
    packages as they are on disk (so uncommitted edits give another version too). Results and
    cached scores keyed by it are never reused across code changes."""
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        for path in sorted((repo / package).rglob("*.py")):
            digest.update(path.relative_to(repo).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    commit = (git_output(repo, "rev-parse", "HEAD") or "unknown").strip()
    return f"{commit}+{digest.hexdigest()[:16]}"


def training_record(repo: Path = REPO) -> dict:
    """What identifies the code that is about to train: the commit (None outside a git checkout),
    the code version and the tracked files with uncommitted changes (None: unknown)."""
    commit = (git_output(repo, "rev-parse", "HEAD") or "").strip() or None
    return {"commit": commit, "code_version": code_version(repo), "uncommitted": uncommitted_files(repo),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def write_training_record(model_dir: Path, record: dict) -> Path:
    """Write `record` (`training_record`, taken when training started) into a model folder."""
    path = Path(model_dir) / TRAINING_RECORD_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path

