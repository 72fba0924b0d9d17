"""COIN annotations (180 tasks, 778 steps).

Files under the dataset root: `coin_train.json` / `coin_valid.json` (train / test), each a list
of `{video: {recipe_type, class, annotation: [{id (1-based step id as a string), segment
[start, end], label}]}}`. The shared data holds only coin_valid.json, so COIN can be evaluated
there but not trained. Step labels come from the annotations of every list present; task
names from `class` ("UseAnalyticalBalance" -> "Use Analytical Balance", the descriptors' keys).
Features: `<video>.npz|.npy`. Times are truncated to whole seconds with int(), as the peers do.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from training.datasets.annotations import Segment, VideoAnnotation, check_split, expect, fault, field, read_json
from training.datasets.base import DatasetError, StepVocabulary

log = logging.getLogger(__name__)

DESCRIPTIONS_FILE = "descriptors_coin.json"
SPLIT_FILES = {"train": "coin_train.json", "test": "coin_valid.json"}


@dataclass(frozen=True)
class _Video:
    name: str
    task: int
    task_name: str
    steps: tuple[tuple[int, str, int, int], ...]  # (0-based step id, label, start, end)


def _read_list(path: Path) -> list[_Video]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found (the COIN video list; the shared data has only "
                           f"{SPLIT_FILES['test']}, so COIN there can be evaluated but not trained)")
    videos = []
    for n, entry in enumerate(expect(read_json(path), list, path, ())):
        entry = expect(entry, dict, path, (n,))
        if len(entry) != 1:
            raise fault(path, (n,), f"must hold exactly one video, got {len(entry)} keys")
        (name, info), = entry.items()
        keys = (n, name)
        info = expect(info, dict, path, keys)
        task = field(info, "recipe_type", int, path, keys)
        if task < 0:
            raise fault(path, (*keys, "recipe_type"), f"must be >= 0, got {task}")
        task_name = re.sub(r"(?<!^)([A-Z])", r" \1", field(info, "class", str, path, keys)).strip()
        steps = []
        for m, step in enumerate(field(info, "annotation", list, path, keys)):
            step_keys = (*keys, "annotation", m)
            step = expect(step, dict, path, step_keys)
            raw_id = field(step, "id", (str, int), path, step_keys)
            if not str(raw_id).isdigit() or int(raw_id) < 1:
                raise fault(path, (*step_keys, "id"), f"must be a 1-based step id, got {raw_id!r}")
            segment = field(step, "segment", list, path, step_keys)
            if len(segment) != 2:
                raise fault(path, (*step_keys, "segment"), f"must be [start, end], got {segment!r}")
            start, end = (expect(t, (int, float), path, (*step_keys, "segment", i)) for i, t in enumerate(segment))
            label = field(step, "label", str, path, step_keys)
            steps.append((int(raw_id) - 1, label, int(start), int(end)))
        videos.append(_Video(name, task, task_name, tuple(steps)))
    return videos


def read_vocabulary(root: Path) -> StepVocabulary:
    """Steps and tasks seen in the lists present (ids 0..max); an id never seen gets a
    placeholder label and a warning; one id with two labels is an error."""
    paths = [root / f for f in SPLIT_FILES.values() if (root / f).is_file()]
    if not paths:
        raise DatasetError(f"{root}: neither {' nor '.join(SPLIT_FILES.values())} found")
    labels: dict[int, str] = {}
    tasks: dict[int, str] = {}
    task_steps: dict[int, set[int]] = {}
    for path in paths:
        for video in _read_list(path):
            for step, label, _, _ in video.steps:
                if labels.setdefault(step, label) != label:
                    raise DatasetError(f"{path}: step id {step + 1} is labelled both {labels[step]!r} and {label!r}")
                task_steps.setdefault(video.task, set()).add(step)
            tasks.setdefault(video.task, video.task_name)
    if not labels:
        raise DatasetError(f"{', '.join(str(p) for p in paths)}: no annotated steps")
    unseen = [i for i in range(max(labels) + 1) if i not in labels]
    if unseen:
        log.warning("COIN: %d step ids never appear in %s; they get placeholder labels", len(unseen),
                    ", ".join(str(p) for p in paths))
    return StepVocabulary(
        labels=tuple(labels.get(i, f"step {i + 1}") for i in range(max(labels) + 1)),
        tasks=tuple(tasks.get(i, f"task {i}") for i in range(max(tasks) + 1)),
        task_steps={t: tuple(sorted(s)) for t, s in sorted(task_steps.items())},
    )


def read_split(root: Path, split: str, vocab: StepVocabulary) -> list[VideoAnnotation]:
    """The videos of one split with their annotated steps (times truncated to seconds)."""
    check_split(split)
    return [VideoAnnotation(v.name, v.task, v.name, tuple(Segment(s, a, b) for s, _, a, b in v.steps))
            for v in _read_list(root / SPLIT_FILES[split])]
