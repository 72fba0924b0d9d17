"""LLM-written step descriptions in the SCHEMA format, one `StepDescription` per global step id.

File format: `{task name: {step label: {"description": str, "before": [str], "after": [str]}}}`.
Steps are looked up under their own task (CrossTask reuses labels such as "pour milk" across
tasks with different descriptions). A step the file lacks falls back to its label, with one
warning for all of them: training still runs, and the warning says which steps lost their
description. A malformed file is an error naming the file and the key path of the fault.
"""
from __future__ import annotations

import logging
from pathlib import Path

from training.datasets.annotations import expect, field, read_json
from training.datasets.base import StepDescription, StepVocabulary

log = logging.getLogger(__name__)


def read_schema_file(path: Path) -> dict[str, dict[str, StepDescription]]:
    """Parse and check every entry of a SCHEMA-format file: task -> step label -> description."""
    data = expect(read_json(path), dict, path, ())
    parsed: dict[str, dict[str, StepDescription]] = {}
    for task, steps in data.items():
        parsed[task] = {}
        for label, entry in expect(steps, dict, path, (task,)).items():
            keys = (task, label)
            entry = expect(entry, dict, path, keys)
            description = field(entry, "description", str, path, keys)
            states = {}
            for side in ("before", "after"):
                sentences = field(entry, side, list, path, keys) if side in entry else []
                states[side] = tuple(expect(s, str, path, (*keys, side, i)) for i, s in enumerate(sentences))
            parsed[task][label] = StepDescription(label, description, states["before"], states["after"])
    return parsed


def label_descriptions(vocab: StepVocabulary) -> list[StepDescription]:
    """Descriptions that are just the labels (what a step without an LLM description gets)."""
    return [StepDescription(label, label) for label in vocab.labels]


def load_schema_descriptions(path: str | Path, vocab: StepVocabulary) -> list[StepDescription]:
    """One description per global step id, in vocab order; missing steps fall back to their label."""
    path = Path(path)
    by_task = read_schema_file(path)
    task_of = {step: task for task, steps in vocab.task_steps.items() for step in steps}
    descriptions = label_descriptions(vocab)
    missing = []
    for step, label in enumerate(vocab.labels):
        entry = by_task.get(vocab.tasks[task_of[step]], {}).get(label) if step in task_of else None
        if entry is None:
            missing.append(label if step not in task_of else f"{vocab.tasks[task_of[step]]}/{label}")
        else:
            descriptions[step] = entry
    if missing:
        log.warning("%s: no description for %d of %d steps (using their labels): %s%s", path, len(missing),
                    vocab.num_steps, ", ".join(missing[:5]), ", ..." if len(missing) > 5 else "")
    return descriptions
