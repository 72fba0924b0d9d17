"""CrossTask annotations (18 primary tasks, 133 task-specific steps).

Files under the dataset root:
- `crosstask_release/tasks_primary.txt`: records of id, name, url, number of steps,
  comma-separated steps, blank line;
- `crosstask_release/annotations/<task>_<video>.csv`: rows `step_no (1-based),start_s,end_s`;
- `cross_task_data_False.json` / `cross_task_data_True.json`: the train / test video lists
  (entries `{"id": {"vid": ..., "task": ...}}`);
- `crosstask_indices.json` (optional): the peers' global ids, `action_idx` ("<task>_<step>" ->
  1-based id) and `task_idx` (task name -> 0-based id). Without it ids follow tasks_primary.txt
  order, which is NOT the order the published models use.
Features: `<task>_<video>.npz|.npy`. Times are rounded to whole seconds, as the peers do.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from training.datasets.annotations import (
    Segment,
    VideoAnnotation,
    check_split,
    expect,
    fault,
    field,
    read_json,
)
from training.datasets.base import DatasetError, StepVocabulary

log = logging.getLogger(__name__)

DESCRIPTIONS_FILE = "descriptors_crosstask.json"
SPLIT_FILES = {"train": "cross_task_data_False.json", "test": "cross_task_data_True.json"}
TASKS_FILE = Path("crosstask_release") / "tasks_primary.txt"
ANNOTATION_DIR = Path("crosstask_release") / "annotations"
INDICES_FILE = "crosstask_indices.json"


@dataclass(frozen=True)
class Task:
    number: str  # CrossTask's task id, e.g. "23521"
    name: str
    steps: tuple[str, ...]


def read_tasks(path: Path) -> list[Task]:
    """Parse tasks_primary.txt (records of 5 lines, each followed by a blank line)."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    tasks = []
    for first in range(0, len(lines), 6):
        record = [line.strip() for line in lines[first:first + 5]]
        if not any(record):
            continue
        if len(record) < 5:
            raise DatasetError(f"{path}: line {first + 1}: incomplete task record (need id, name, url, n_steps, steps)")
        number, name, _url, n_steps, steps = record
        names = tuple(s.strip() for s in steps.split(","))
        if not n_steps.isdigit() or int(n_steps) != len(names):
            raise DatasetError(f"{path}: line {first + 4}: task {number} declares {n_steps!r} steps "
                               f"but line {first + 5} lists {len(names)}")
        tasks.append(Task(number, name, names))
    if not tasks:
        raise DatasetError(f"{path}: no task records")
    return tasks


def read_vocabulary(root: Path) -> StepVocabulary:
    """Global step and task ids: the peers' (crosstask_indices.json, checked against
    tasks_primary.txt) when that file is present, else tasks_primary.txt order."""
    tasks = read_tasks(root / TASKS_FILE)
    indices_path = root / INDICES_FILE
    if indices_path.is_file():
        step_ids, task_ids = _peer_ids(indices_path, tasks)
    else:
        log.warning("%s not found: step ids follow %s order, not the peers' ids", indices_path, TASKS_FILE)
        positions = [(t, p) for t, task in enumerate(tasks) for p in range(len(task.steps))]
        step_ids = {position: i for i, position in enumerate(positions)}
        task_ids = list(range(len(tasks)))
    labels = [""] * len(step_ids)
    for (t, p), i in step_ids.items():
        labels[i] = tasks[t].steps[p]
    names = [""] * len(tasks)
    for t, i in enumerate(task_ids):
        names[i] = tasks[t].name
    task_steps = {task_ids[t]: tuple(step_ids[(t, p)] for p in range(len(task.steps))) for t, task in enumerate(tasks)}
    return StepVocabulary(labels=tuple(labels), tasks=tuple(names), task_steps=task_steps)


def _peer_ids(path: Path, tasks: list[Task]) -> tuple[dict[tuple[int, int], int], list[int]]:
    """(task position, step position) -> 0-based global step id, and task position -> task id,
    from crosstask_indices.json; every step must be there and the ids must be 0..n-1."""
    data = expect(read_json(path), dict, path, ())
    action_idx = field(data, "action_idx", dict, path, ())
    task_idx = field(data, "task_idx", dict, path, ())
    step_ids = {}
    task_ids = []
    for t, task in enumerate(tasks):
        if task.name not in task_idx:
            raise fault(path, ("task_idx",), f"has no entry for task {task.name!r} of {TASKS_FILE}")
        task_ids.append(expect(task_idx[task.name], int, path, ("task_idx", task.name)))
        for p, step in enumerate(task.steps):
            key = f"{task.name}_{step}"
            if key not in action_idx:
                raise fault(path, ("action_idx",), f"has no entry {key!r} (a step of {TASKS_FILE})")
            step_ids[(t, p)] = expect(action_idx[key], int, path, ("action_idx", key)) - 1
    if sorted(step_ids.values()) != list(range(len(step_ids))):
        raise fault(path, ("action_idx",),
                    f"must number the {len(step_ids)} steps of {TASKS_FILE} 1..{len(step_ids)}, each once")
    if sorted(task_ids) != list(range(len(tasks))):
        raise fault(path, ("task_idx",),
                    f"must number the {len(tasks)} tasks of {TASKS_FILE} 0..{len(tasks) - 1}, each once")
    return step_ids, task_ids


def read_split(root: Path, split: str, vocab: StepVocabulary) -> list[VideoAnnotation]:
    """The videos of one split, each with its annotated steps (times rounded to seconds)."""
    check_split(split)
    tasks = read_tasks(root / TASKS_FILE)
    task_by_number = {task.number: task for task in tasks}
    task_ids = {name: i for i, name in enumerate(vocab.tasks)}
    path = root / SPLIT_FILES[split]
    entries = expect(read_json(path), list, path, ())
    videos = []
    for n, entry in enumerate(entries):
        ident = field(expect(entry, dict, path, (n,)), "id", dict, path, (n,))
        video = field(ident, "vid", str, path, (n, "id"))
        number = str(field(ident, "task", (str, int), path, (n, "id")))
        if number not in task_by_number:
            raise fault(path, (n, "id", "task"), f"is {number!r}, not a task of {TASKS_FILE}")
        task_id = task_ids[task_by_number[number].name]
        steps = vocab.task_steps[task_id]
        segments = _read_segments(root / ANNOTATION_DIR / f"{number}_{video}.csv", steps)
        videos.append(VideoAnnotation(video, task_id, f"{number}_{video}", segments))
    return videos


def _read_segments(path: Path, steps: tuple[int, ...]) -> tuple[Segment, ...]:
    """Rows `step_no,start,end` -> segments with global ids; times rounded half-to-even
    (Python's round, like the peers' np.round)."""
    if not path.is_file():
        raise DatasetError(f"{path}: annotation file not found")
    segments = []
    with path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            try:
                if len(row) != 3:
                    raise ValueError
                step_no, start, end = int(row[0]), round(float(row[1])), round(float(row[2]))
            except (ValueError, OverflowError):
                raise DatasetError(f"{path}: line {line_no}: expected 'step_no,start_s,end_s', "
                                   f"got {','.join(row)!r}") from None
            if not 1 <= step_no <= len(steps):
                raise DatasetError(f"{path}: line {line_no}: step {step_no} is outside 1..{len(steps)} for this task")
            segments.append(Segment(steps[step_no - 1], start, end))
    return tuple(segments)
