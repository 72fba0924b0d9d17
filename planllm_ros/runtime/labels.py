"""Candidate label files for open-vocabulary planning. `planllm plan --labels FILE` and the
node's `labels_file` parameter both read them here, so both take and refuse the same files.

FILE is UTF-8 text with one label per line; blank lines and lines starting with # are skipped.
A file without labels, a label given twice (ignoring case and spacing), bytes that are not
UTF-8 or a line longer than MAX_LABEL_CHARS (a whole list on one line, a file that is not a
label list) are refused with the file and line in one line of text, since each would silently
change the plans; whoever reads the file keeps its previous list.

Descriptions are optional: FILE with its suffix replaced by `.descriptions.json`
(labels.txt -> labels.descriptions.json), in the SCHEMA format `planllm describe` writes,
{task: {label: {"description": str, "before": [str], "after": [str]}}}. A label found in it
(under any task; the first one wins) is described by its description and state sentences;
labels it lacks are matched by their text alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DESCRIPTIONS_SUFFIX = ".descriptions.json"
MAX_LABEL_CHARS = 200  # a step label is a short sentence; the longest of CrossTask, COIN and the tabletop has 102


class LabelFileError(ValueError):
    """A labels or descriptions file cannot be used; the message names the file (and line)."""


@dataclass(frozen=True)
class CandidateLabels:
    labels: tuple[str, ...]
    descriptions: tuple[str | None, ...] | None  # one per label; None when there is no descriptions file
    path: Path


def descriptions_path(path: str | Path) -> Path:
    """Where the descriptions of the labels in `path` are looked for."""
    path = Path(path)
    return path.with_name(path.stem + DESCRIPTIONS_SUFFIX)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabelFileError(f"{path}: no such file") from None
    except OSError as error:
        raise LabelFileError(f"{path}: cannot read it ({error.strerror or error})") from error
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise LabelFileError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                             f"save the file as UTF-8") from None


def _key(label: str) -> str:
    return " ".join(label.lower().split())


def read_label_file(path: str | Path) -> CandidateLabels:
    """The labels of `path` and, when its descriptions file exists, their descriptions."""
    path = Path(path)
    labels: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        label = line.strip()
        if not label or label.startswith("#"):
            continue
        if len(label) > MAX_LABEL_CHARS:
            raise LabelFileError(f"{path}:{number}: a label of {len(label)} characters (at most {MAX_LABEL_CHARS}): "
                                 f"expected one label per line")
        if _key(label) in first_line:
            raise LabelFileError(f"{path}:{number}: label {label!r} is already on line {first_line[_key(label)]}")
        first_line[_key(label)] = number
        labels.append(label)
    if not labels:
        raise LabelFileError(f"{path}: holds no labels (expected one label per line; blank lines and # comments "
                             f"are skipped)")
    described = descriptions_path(path)
    descriptions = None
    if described.is_file():
        texts = read_descriptions(described)
        descriptions = tuple(texts.get(label) for label in labels)
    return CandidateLabels(tuple(labels), descriptions, path)


def read_descriptions(path: Path) -> dict[str, str]:
    """label -> its text (description and state sentences) from a SCHEMA-format file."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise LabelFileError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise LabelFileError(f"{path}: expected {{task: {{label: {{\"description\": ...}}}}}} (SCHEMA format, as "
                             f"`planllm describe` writes it)")
    texts: dict[str, str] = {}
    for task, steps in data.items():
        if not isinstance(steps, dict):
            raise LabelFileError(f"{path}: {task!r}: expected an object of labels")
        for label, entry in steps.items():
            where = f"{path}: {task!r} / {label!r}"
            if not isinstance(entry, dict) or not isinstance(entry.get("description"), str):
                raise LabelFileError(f"{where}: expected an object with a \"description\" string")
            sentences = [entry["description"]]
            for side in ("before", "after"):
                values = entry.get(side, [])
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise LabelFileError(f"{where}: {side!r} must be a list of strings")
                sentences += values
            texts.setdefault(label, " ".join(s.strip() for s in sentences if s.strip()))
    return texts
