"""An imported episode dataset: written by `planllm data episodes import`, read by training.

    DATASET/
      dataset.json           episodes (name, task, split, steps, recording facts), backbone identity, context
      labels.txt             the vocabulary (line order = step id)
      tasks.json             {task: [its labels]}: the --labels input of `planllm describe`
      descriptions.json      SCHEMA-format descriptions, when the source has them
      features/<episode>.npz start, end: float16 (steps, *feature shape), the states around each step's ends

Samples are cut as CrossTask's: every window of T consecutive steps of an episode, its start
state the frames around the first step's start, its goal state the frames around the last
step's end. Without descriptions.json a step's description is its label.

The import checks everything first, then builds the dataset in a temporary folder beside the
destination and moves it into place, so a failed or interrupted import leaves nothing half written.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets.base import DatasetError, ProcedureDataset, Sample, StepVocabulary
from training.datasets.descriptions import label_descriptions, load_schema_descriptions, read_schema_file
from training.episodes.features import CONTEXT_S, episode_states, step_frames
from training.episodes.frames import Recording, open_recording
from training.episodes.layout import DESCRIPTIONS_FILE, LABELS_FILE, EpisodeSpec, Source, read_labels, read_source

log = logging.getLogger(__name__)

FORMAT = "planllm-episodes/1"
DATASET_FILE = "dataset.json"
TASKS_FILE = "tasks.json"
FEATURES_DIR = "features"


@dataclass
class CheckedSource:
    """A source folder with every episode's recording opened and its steps checked against it."""

    source: Source
    episodes: list[tuple[EpisodeSpec, Recording]]
    errors: list[DatasetError]


def check_source(path: Path, image_topic: str | None = None, context: float = CONTEXT_S,
                 on_episode: Callable[[EpisodeSpec, Recording], None] | None = None) -> CheckedSource:
    """Read the source folder and every recording; one error per faulty episode, the rest kept."""
    source = read_source(path)
    checked = CheckedSource(source, [], list(source.errors))
    if (path / DESCRIPTIONS_FILE).is_file():
        try:
            read_schema_file(path / DESCRIPTIONS_FILE)
        except DatasetError as err:
            checked.errors.append(err)
    for spec in source.episodes:
        try:
            recording = open_recording(spec.recording, image_topic)
            step_frames(spec, recording, context)
        except DatasetError as err:
            checked.errors.append(err)
            continue
        checked.episodes.append((spec, recording))
        if on_episode:
            on_episode(spec, recording)
    return checked


def import_dataset(source: Path, out: Path, arguments: dict[str, Any], image_topic: str | None = None,
                   context: float = CONTEXT_S, cache_dir: str | Path | None = None, overwrite: bool = False,
                   progress: bool = True) -> dict[str, Any]:
    """Check `source`, compute its states with the backbone `arguments`, write the dataset at
    `out`; returns what dataset.json holds, plus how many episodes the feature cache served."""
    if out.exists() and not overwrite:
        raise DatasetError(f"{out} already exists (pass --overwrite to replace it)")
    checked = check_source(source, image_topic, context)
    if checked.errors:
        raise DatasetError("\n".join(str(e) for e in checked.errors))
    states, backbone, cached = episode_states(checked.episodes, arguments, context, cache_dir, progress)
    shapes = {tuple(s.start.shape[1:]) for s in states.values()}
    meta = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": str(source.resolve()),
        "context_s": context,
        "backbone": backbone,
        "feature_shape": list(shapes.pop()),
        "episodes": [_episode_entry(spec, recording) for spec, recording in checked.episodes],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / FEATURES_DIR).mkdir()
        for name, state in states.items():
            np.savez(tmp / FEATURES_DIR / f"{name}.npz", start=state.start, end=state.end)
        shutil.copyfile(source / LABELS_FILE, tmp / LABELS_FILE)
        if (source / DESCRIPTIONS_FILE).is_file():
            shutil.copyfile(source / DESCRIPTIONS_FILE, tmp / DESCRIPTIONS_FILE)
        tasks: dict[str, list[str]] = {}
        for spec, _ in checked.episodes:
            tasks.setdefault(spec.task, [])
            tasks[spec.task] += [s.label for s in spec.steps if s.label not in tasks[spec.task]]
        (tmp / TASKS_FILE).write_text(json.dumps(tasks, indent=1) + "\n", encoding="utf-8")
        (tmp / DATASET_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**meta, "from_cache": cached}


def _episode_entry(spec: EpisodeSpec, recording: Recording) -> dict[str, Any]:
    return {"name": spec.name, "task": spec.task, "split": spec.split, "recording": recording.kind,
            "topic": recording.topic, "frames": len(recording.times), "duration_s": float(recording.times[-1]),
            "size": list(recording.size), "steps": [[s.start_s, s.end_s, s.label] for s in spec.steps]}


def _move_into_place(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp`: the old dataset is renamed aside first and removed last."""
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def read_meta(root: str | Path) -> dict[str, Any]:
    path = Path(root) / DATASET_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: not found: is {root} a dataset written by `planllm data episodes import`?")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}: re-import it")
    return meta


def vocabulary(root: Path, meta: dict[str, Any]) -> StepVocabulary:
    """Labels in labels.txt order; tasks sorted by name, each with the steps its episodes use."""
    labels = read_labels(root / LABELS_FILE)
    index = {label: i for i, label in enumerate(labels)}
    tasks = sorted({e["task"] for e in meta["episodes"]})
    task_steps = {t: sorted({index[s[2]] for e in meta["episodes"] if e["task"] == task for s in e["steps"]})
                  for t, task in enumerate(tasks)}
    return StepVocabulary(labels, tuple(tasks), {t: tuple(ids) for t, ids in task_steps.items()})


def load_episodes(root: str | Path, split: str, horizon: int, backbone: dict[str, Any] | None = None) -> ProcedureDataset:
    """The `train` (every non-held-out episode) or `test` (held-out) windows of an imported
    dataset. `backbone` (name and settings, as features.backbone_arguments gives them) must
    match the one the dataset was imported with, when given."""
    if split not in ("train", "test"):
        raise ValueError(f"episode datasets have splits train and test, got {split!r}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    root = Path(root)
    meta = read_meta(root)
    if backbone is not None:
        _check_backbone(root, meta["backbone"], backbone)
    vocab = vocabulary(root, meta)
    episodes = [e for e in meta["episodes"] if e["split"] == split]
    if not episodes:
        raise DatasetError(f"{root}: no {split} episodes" + (" (hold episodes out with split=test in the source's "
                                                            "episodes.csv)" if split == "test" else ""))
    index = {label: i for i, label in enumerate(vocab.labels)}
    task_ids = {task: i for i, task in enumerate(vocab.tasks)}
    samples = []
    for entry in episodes:
        with np.load(root / FEATURES_DIR / f"{entry['name']}.npz", allow_pickle=False) as data:
            start, end = data["start"], data["end"]
        steps = np.array([index[s[2]] for s in entry["steps"]], dtype=np.int64)
        for first in range(len(steps) - horizon + 1):
            samples.append(Sample(start[first], end[first + horizon - 1], steps[first:first + horizon],
                                  task_ids[entry["task"]], entry["name"], steps[:first], steps[first + horizon:]))
    descriptions_path = root / DESCRIPTIONS_FILE
    if descriptions_path.is_file():
        descriptions = load_schema_descriptions(descriptions_path, vocab)
    else:
        log.info("%s has no %s: each step's description is its label", root, DESCRIPTIONS_FILE)
        descriptions = label_descriptions(vocab)
    return ProcedureDataset("episodes", split, horizon, samples, vocab, descriptions)


def _check_backbone(root: Path, imported: dict[str, Any], wanted: dict[str, Any]) -> None:
    want = {"backbone": wanted["name"], "settings": {k: v for k, v in wanted.items() if k not in ("name", "checkpoint")}}
    have = {"backbone": imported["backbone"], "settings": imported["settings"]}
    if want != have:
        raise DatasetError(f"{root}: imported with backbone {have}, but the config's model.visual asks for {want}: "
                           f"re-import with `planllm data episodes import --config` naming this config")
