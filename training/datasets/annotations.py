"""What the benchmark readers (crosstask.py, coin.py, niv.py) hand to the loader and simulator.

Each reader turns its dataset's own annotation format into the same small types: a
`StepVocabulary` (global step ids) and, per split, a list of `VideoAnnotation`s whose segment
times are already whole seconds under the dataset's peer convention (CrossTask rounds, COIN
and NIV truncate), so windowing and simulation never need to know which dataset they serve.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.datasets.base import DatasetError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Segment:
    """One annotated step of a video: global step id and its start/end second (whole seconds)."""

    step: int
    start: int
    end: int


@dataclass(frozen=True)
class VideoAnnotation:
    """A video's annotated steps in annotation-file order (the peers' order: not re-sorted)."""

    video: str
    task: int
    feature_stem: str  # the feature file's name without extension
    segments: tuple[Segment, ...]


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or unparsable file is a DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason})") from err


def key_path(keys: tuple[Any, ...]) -> str:
    """`["task"]["step"][2]`: where in a JSON document a fault is (empty keys: the root)."""
    return "".join(f"[{k}]" if isinstance(k, int) else f"[{json.dumps(k)}]" for k in keys) or "<root>"


def fault(path: Path, keys: tuple[Any, ...], problem: str) -> DatasetError:
    """The error for a bad value: `<file>: ["task"]["step"] <problem>`."""
    return DatasetError(f"{path}: {key_path(keys)} {problem}")


_KIND_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", (int, float): "a number",
               (str, int): "a string or an integer"}


def expect(value: Any, kind: type | tuple[type, ...], path: Path, keys: tuple[Any, ...]) -> Any:
    """Return `value` if it has JSON type `kind` (booleans are not numbers); else a DatasetError
    naming the file and the key path."""
    if not isinstance(value, kind) or isinstance(value, bool):
        raise fault(path, keys, f"must be {_KIND_NAMES.get(kind, kind)}, got {type(value).__name__} "
                                f"{json.dumps(value)[:60]}")
    return value


def field(obj: dict, name: str, kind: type | tuple[type, ...], path: Path, keys: tuple[Any, ...]) -> Any:
    """`obj[name]`, checked to exist and to have JSON type `kind`."""
    if name not in obj:
        raise fault(path, keys, f"has no {name!r} field")
    return expect(obj[name], kind, path, (*keys, name))
