"""The shared report writer of `planllm bench`: one Markdown file and one PNG per benchmark.

Every results file starts with the same header (what ran, where, when, with which versions,
seeds, the exact command and the code version), so a number in bench/results/ can always be
traced to a run and reproduced. A run is reproducible only from a commit, so `planllm bench`
refuses a working tree with uncommitted changes to tracked files unless told otherwise
(`require_committed`), and the header of such a run says so in bold. Tables are plain GitHub
Markdown; plots are matplotlib PNGs (Agg: no display).
"""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.train.logging_utils import REPO, code_version, git_output, uncommitted_files

VERSIONED_PACKAGES = ("torch", "transformers", "peft", "onnxruntime", "numpy")


class DirtyTreeError(RuntimeError):
    """The code is not a commit: tracked files have uncommitted changes, or it is no git checkout."""


@dataclass
class Table:
    """One Markdown table: a caption line, column headers and rows of already formatted cells."""

    caption: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        widths = len(self.headers)
        for row in self.rows:
            if len(row) != widths:
                raise ValueError(f"table {self.caption!r}: a row has {len(row)} cells, the header {widths}")
        lines = [f"**{self.caption}**", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "---|" * widths]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def mean_std(values: Sequence[float]) -> str:
    """"mean ± std" (population std over seeds; ± 0.00 for one seed, which the header says)."""
    array = np.asarray(values, dtype=np.float64)
    return f"{array.mean():.2f} ± {array.std():.2f}"


def require_committed(allow_dirty: bool, repo: Path = REPO) -> None:
    """Raise DirtyTreeError unless the code in `repo` is exactly a commit (or `allow_dirty`)."""
    files = uncommitted_files(repo)
    if files == [] or allow_dirty:
        return
    what = "it is not a git checkout, so its commit is unknown" if files is None else \
        f"{len(files)} tracked file(s) have uncommitted changes: {', '.join(files[:10])}{' ...' if len(files) > 10 else ''}"
    raise DirtyTreeError(f"results come only from a commit, but {repo}: {what}. Commit first, or pass "
                         f"--allow-dirty (the results header then says so)")


def _git_commit(repo: Path = REPO) -> str:
    commit = (git_output(repo, "rev-parse", "--short", "HEAD") or "").strip() or "unknown"
    return commit + (" (with uncommitted changes)" if uncommitted_files(repo) else "")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    """Machine, date and versions, for the header of every results file."""
    import torch

    cpu = platform.processor() or platform.machine()
    machine = f"{platform.node()}: {cpu}, {os.cpu_count()} CPU(s), {platform.platform()}"
    if torch.cuda.is_available():
        machine += f", GPU {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    versions = ", ".join(f"{name} {_version(name)}" for name in VERSIONED_PACKAGES)
    return {
        "machine": machine,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": f"Python {platform.python_version()}, {versions}, planllm_ros commit {_git_commit()}",
    }


def write_report(path: Path, title: str, command: str, seeds: Sequence[int] | str, tables: Sequence[Table],
                 notes: Sequence[str] = (), plot: Path | None = None) -> Path:
    """Write the Markdown results file `path`: header, notes, tables, and a link to the plot."""
    env = environment()
    seeds_text = seeds if isinstance(seeds, str) else ", ".join(str(s) for s in seeds)
    lines = [f"# {title}", "", f"- command: `{command}`", f"- machine: {env['machine']}",
             f"- date: {env['date']}", f"- versions: {env['versions']}", f"- code version: {code_version()}",
             f"- seeds: {seeds_text}"]
    dirty = uncommitted_files()
    if dirty != []:
        lines.append("- **NOT FROM A COMMIT**: " + ("not a git checkout" if dirty is None
                                                    else "uncommitted changes in " + ", ".join(dirty)))
    lines += [f"- {note}" for note in notes]
    if plot is not None:
        lines += ["", f"![{title}]({plot.name})"]
    for table in tables:
        lines += ["", table.markdown()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bar_plot(path: Path, title: str, groups: Sequence[str], series: dict[str, Sequence[float]],
             ylabel: str, errors: dict[str, Sequence[float]] | None = None) -> Path:
    """A grouped bar chart: one group per entry of `groups`, one bar per series (with optional
    error bars), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, values in series.items():
        if len(values) != len(groups):
            raise ValueError(f"plot {title!r}: series {name!r} has {len(values)} values for {len(groups)} groups")
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(series)) ** 0.5 + 2), 4.0))
    for i, (name, values) in enumerate(series.items()):
        yerr = None if errors is None else errors.get(name)
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, yerr=yerr, capsize=3 if yerr is not None else 0,
               label=name)
    ax.set_xticks(x, list(groups), rotation=30 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
