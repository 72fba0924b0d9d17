"""NIV annotations (5 tasks, 48 steps).

Files under the dataset root: `niv_action_idx.json` (task name -> {task_id, actions: step label
-> 0-based global id}), `niv_train.json` / `niv_valid.json` (train / test: video -> {task,
task_id, steps: [{action, action_id, start, end}]}). Features: `<video>.npz|.npy`.
Times are truncated to whole seconds with int(), as the peers do.
"""
from __future__ import annotations

from pathlib import Path

from training.datasets.annotations import Segment, VideoAnnotation, check_split, expect, fault, field, read_json
from training.datasets.base import DatasetError, StepVocabulary

DESCRIPTIONS_FILE = "descriptors_niv.json"
SPLIT_FILES = {"train": "niv_train.json", "test": "niv_valid.json"}
VOCAB_FILE = "niv_action_idx.json"


def read_vocabulary(root: Path) -> StepVocabulary:
    """Step and task ids as niv_action_idx.json numbers them (each id used once, no gaps)."""
    path = root / VOCAB_FILE
    data = expect(read_json(path), dict, path, ())
    tasks: dict[int, str] = {}
    labels: dict[int, str] = {}
    task_steps = {}
    for name, info in data.items():
        info = expect(info, dict, path, (name,))
        task_id = field(info, "task_id", int, path, (name,))
        actions = field(info, "actions", dict, path, (name,))
        if task_id in tasks:
            raise DatasetError(f"{path}: task_id {task_id} is used by both {tasks[task_id]!r} and {name!r}")
        tasks[task_id] = name
        for label, step in actions.items():
            step = expect(step, int, path, (name, "actions", label))
            if step in labels:
                raise DatasetError(f"{path}: step id {step} is used by both {labels[step]!r} and {label!r}")
            labels[step] = label
        task_steps[task_id] = tuple(actions[label] for label in actions)
    for what, ids in (("task_id", tasks), ("action id", labels)):
        if sorted(ids) != list(range(len(ids))):
            raise DatasetError(f"{path}: the {what}s must be 0..{len(ids) - 1} with no gaps, got {sorted(ids)}")
    return StepVocabulary(labels=tuple(labels[i] for i in range(len(labels))),
                          tasks=tuple(tasks[i] for i in range(len(tasks))), task_steps=task_steps)


def read_split(root: Path, split: str, vocab: StepVocabulary) -> list[VideoAnnotation]:
    """The videos of one split with their annotated steps (times truncated to seconds)."""
    check_split(split)
    path = root / SPLIT_FILES[split]
    data = expect(read_json(path), dict, path, ())
    videos = []
    for video, info in data.items():
        info = expect(info, dict, path, (video,))
        task = field(info, "task_id", int, path, (video,))
        if not 0 <= task < vocab.num_tasks:
            raise fault(path, (video, "task_id"), f"is {task}, outside 0..{vocab.num_tasks - 1}")
        segments = []
        for n, step in enumerate(field(info, "steps", list, path, (video,))):
            keys = (video, "steps", n)
            step = expect(step, dict, path, keys)
            action = field(step, "action_id", int, path, keys)
            if not 0 <= action < vocab.num_steps:
                raise fault(path, (*keys, "action_id"), f"is {action}, outside 0..{vocab.num_steps - 1}")
            start = field(step, "start", (int, float), path, keys)
            end = field(step, "end", (int, float), path, keys)
            segments.append(Segment(action, int(start), int(end)))
        videos.append(VideoAnnotation(video, task, video, tuple(segments)))
    return videos
