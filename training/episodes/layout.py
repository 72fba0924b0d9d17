"""The source folder a team writes: recordings, their steps files, a label list, a manifest.

    SOURCE/
      labels.txt             the step vocabulary: one label per line (blank lines and '#' lines skipped)
      descriptions.json      optional: SCHEMA-format step descriptions (see training/datasets/descriptions.py)
      episodes.csv           optional manifest, header `episode,task,split` (task and split may be blank)
      <episode>/             a rosbag2 folder (metadata.yaml + .db3 or .mcap) or a folder of frames
      <episode>.steps.csv    its steps: header `start_s,end_s,label`, plus an optional `task` column

Times are seconds from the episode's first frame. Steps are listed in time order and may touch
but not overlap. An episode's task comes from the manifest, else from the steps file's `task`
column (one value per file), else it is "default" (the task `planllm describe` gives labels
without one). The manifest's `split` is `train` (the default) or `test`: test episodes are held
out, never trained or validated on. Without a manifest every `<episode>.steps.csv` beside a
folder `<episode>/` is a training episode.

This module checks what can be checked without opening the recordings; training.episodes.frames
checks the steps against the frames.
"""
from __future__ import annotations

import csv
import difflib
import math
from dataclasses import dataclass
from pathlib import Path

from training.datasets.base import DatasetError

LABELS_FILE = "labels.txt"
DESCRIPTIONS_FILE = "descriptions.json"
MANIFEST_FILE = "episodes.csv"
STEPS_SUFFIX = ".steps.csv"
DEFAULT_TASK = "default"
SPLITS = ("train", "test")
STEPS_COLUMNS = ("start_s", "end_s", "label")
MANIFEST_COLUMNS = ("episode", "task", "split")


@dataclass(frozen=True)
class Step:
    start_s: float
    end_s: float
    label: str
    line: int  # line of the steps file, for errors found later against the frames


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode as the source folder describes it (nothing read from the recording yet)."""

    name: str
    task: str
    split: str
    recording: Path
    steps_file: Path
    steps: tuple[Step, ...]


def read_labels(path: Path) -> tuple[str, ...]:
    """The vocabulary, in file order (line order = global step id)."""
    if not path.is_file():
        raise DatasetError(f"{path}: label file not found (one step label per line)")
    labels: dict[str, int] = {}
    for line_no, line in enumerate(_text(path).splitlines(), start=1):
        label = line.strip()
        if not label or label.startswith("#"):
            continue
        if label in labels:
            raise DatasetError(f"{path}: line {line_no}: label {label!r} already on line {labels[label]}")
        labels[label] = line_no
    if not labels:
        raise DatasetError(f"{path}: no labels (one step label per line)")
    return tuple(labels)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason})") from err


def _rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV file whose header names `required` (+ any of `optional`)."""
    lines = _text(path).splitlines()
    reader = csv.DictReader(lines, skipinitialspace=True)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required + optional]
    if missing or unknown:
        raise DatasetError(f"{path}: line 1: header must be {','.join(required)}"
                           f"{' (+ optional ' + ','.join(optional) + ')' if optional else ''}, got {','.join(header)!r}")
    reader.fieldnames = header
    rows = []
    for row in reader:
        if all(not (v or "").strip() for v in row.values()):
            continue
        if None in row or any(v is None for v in row.values()):
            raise DatasetError(f"{path}: line {reader.line_num}: expected {len(header)} columns ({','.join(header)})")
        rows.append((reader.line_num, {k: v.strip() for k, v in row.items()}))
    return rows


def _seconds(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{path}: line {line}: {column} must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value):
        raise DatasetError(f"{path}: line {line}: {column} must be finite, got {text!r}")
    return value


def _unknown_label(path: Path, line: int, label: str, labels: tuple[str, ...]) -> DatasetError:
    close = difflib.get_close_matches(label, labels, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DatasetError(f"{path}: line {line}: unknown label {label!r}: not in {LABELS_FILE}{hint}")


def read_steps(path: Path, labels: tuple[str, ...]) -> tuple[tuple[Step, ...], str | None]:
    """The steps of one episode and the task its file names (None when it has no task column)."""
    if not path.is_file():
        raise DatasetError(f"{path}: steps file not found")
    known = set(labels)
    steps: list[Step] = []
    tasks: dict[str, int] = {}
    for line, row in _rows(path, STEPS_COLUMNS, ("task",)):
        start = _seconds(path, line, "start_s", row["start_s"])
        end = _seconds(path, line, "end_s", row["end_s"])
        label = row["label"]
        if not label:
            raise DatasetError(f"{path}: line {line}: empty label")
        if label not in known:
            raise _unknown_label(path, line, label, labels)
        if end <= start:
            raise DatasetError(f"{path}: line {line}: end_s {end:g} is not after start_s {start:g}")
        if start < 0:
            raise DatasetError(f"{path}: line {line}: start_s {start:g} is before the recording (t=0 is its first frame)")
        if steps and start < steps[-1].end_s:
            previous = steps[-1]
            what = "overlaps" if start >= previous.start_s else "starts before"
            raise DatasetError(f"{path}: line {line}: step {label!r} ({start:g}-{end:g} s) {what} the step on line "
                               f"{previous.line} ({previous.start_s:g}-{previous.end_s:g} s); steps must be in time "
                               f"order and must not overlap")
        if row.get("task"):
            tasks.setdefault(row["task"], line)
        steps.append(Step(start, end, label, line))
    if not steps:
        raise DatasetError(f"{path}: no steps (header {','.join(STEPS_COLUMNS)}, then one row per step)")
    if len(tasks) > 1:
        (first, _), (second, line) = list(tasks.items())[:2]
        raise DatasetError(f"{path}: line {line}: task {second!r} differs from {first!r}: one episode has one task")
    return tuple(steps), next(iter(tasks), None)


@dataclass(frozen=True)
class ManifestRow:
    task: str | None
    split: str
    line: int


def read_manifest(path: Path) -> dict[str, ManifestRow]:
    """episode name -> its manifest row."""
    entries: dict[str, ManifestRow] = {}
    for line, row in _rows(path, ("episode",), MANIFEST_COLUMNS[1:]):
        name = row["episode"]
        if not name or Path(name).name != name or name in (".", ".."):
            raise DatasetError(f"{path}: line {line}: episode must name a folder beside {path.name}, got {name!r}")
        if name in entries:
            raise DatasetError(f"{path}: line {line}: episode {name!r} already on line {entries[name].line}")
        split = row.get("split") or "train"
        if split not in SPLITS:
            raise DatasetError(f"{path}: line {line}: split must be train or test (or blank for train), got {split!r}")
        entries[name] = ManifestRow(row.get("task") or None, split, line)
    if not entries:
        raise DatasetError(f"{path}: no episodes listed")
    return entries


@dataclass
class Source:
    """A source folder read and checked: its vocabulary, the episodes that passed, and one error
    per episode that did not (so `validate` can list every fault at once)."""

    path: Path
    labels: tuple[str, ...]
    episodes: list[EpisodeSpec]
    errors: list[DatasetError]


def read_source(source: Path) -> Source:
    """Every episode of a source folder: the manifest's, else every `<name>.steps.csv`."""
    if not source.is_dir():
        raise DatasetError(f"{source}: source folder not found")
    labels = read_labels(source / LABELS_FILE)
    manifest_path = source / MANIFEST_FILE
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else {}
    names = list(manifest) or sorted(p.name[: -len(STEPS_SUFFIX)] for p in source.glob(f"*{STEPS_SUFFIX}"))
    if not names:
        raise DatasetError(f"{source}: no episodes: expected <episode>{STEPS_SUFFIX} files beside the recordings "
                           f"(or a {MANIFEST_FILE} manifest)")
    result = Source(source, labels, [], [])
    for name in names:
        try:
            result.episodes.append(_episode(source, name, labels, manifest.get(name)))
        except DatasetError as err:
            result.errors.append(err)
    return result


def _episode(source: Path, name: str, labels: tuple[str, ...], row: ManifestRow | None) -> EpisodeSpec:
    """One episode's spec, checked against the vocabulary and its manifest row."""
    steps_file = source / f"{name}{STEPS_SUFFIX}"
    recording = source / name
    if not recording.is_dir():
        where = f"{source / MANIFEST_FILE}: line {row.line}" if row else str(steps_file)
        raise DatasetError(f"{where}: recording {recording} not found (a rosbag2 folder or a folder of frames)")
    steps, file_task = read_steps(steps_file, labels)
    task = file_task or DEFAULT_TASK
    if row is not None and row.task:
        if file_task and file_task != row.task:
            raise DatasetError(f"{source / MANIFEST_FILE}: line {row.line}: task {row.task!r} of episode {name!r} "
                               f"differs from {file_task!r} in {steps_file}")
        task = row.task
    return EpisodeSpec(name, task, row.split if row else "train", recording, steps_file, steps)
