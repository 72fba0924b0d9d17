"""Training checkpoints: safetensors for every tensor, JSON for everything else, never pickle.

A checkpoint is one directory:

    weights.safetensors    model.trainable_state_dict() (frozen pretrained weights are not copied)
    state.safetensors      the tensors of the training state (optimizer moments, RNG states, ...)
    state.json             the rest of the training state, with {"__tensor__": key} placeholders
    config.json            the resolved training config (data, train and model sections)

It is written into a temporary sibling directory and renamed into place, so a run killed at any
moment leaves either the complete old checkpoint or the complete new one, never a half-written
one. Loading validates every file and names the one that is missing or broken.

The training state is an arbitrary tree of dicts, lists, tuples, scalars, strings, tensors and
numpy arrays (optimizer.state_dict(), scheduler.state_dict(), RNG states): `encode_tree` splits
it into a JSON-able tree plus a flat tensor dict, `decode_tree` puts it back together exactly
(tuples stay tuples, integer dict keys stay integers).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

WEIGHTS = "weights.safetensors"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
CONFIG_JSON = "config.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or corrupt; the message names the file."""


@dataclass
class Checkpoint:
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]
    config: dict[str, Any]
    path: Path


def encode_tree(tree: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """A JSON-able copy of `tree`; its tensors / arrays go into `tensors` under path-like keys."""
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree.detach().cpu().clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(tree, np.ndarray):
        tensors[prefix] = torch.from_numpy(np.ascontiguousarray(tree).copy())
        return {"__ndarray__": prefix}
    if isinstance(tree, np.generic):
        return tree.item()
    if isinstance(tree, dict):
        items = [[encode_tree(k, tensors, f"{prefix}.k{i}"), encode_tree(v, tensors, f"{prefix}.{i}")]
                 for i, (k, v) in enumerate(tree.items())]
        if all(isinstance(k, str) and not k.startswith("__") for k in tree):
            return {k: v for k, v in items}
        return {"__dict__": items}
    if isinstance(tree, tuple):
        return {"__tuple__": [encode_tree(v, tensors, f"{prefix}.{i}") for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [encode_tree(v, tensors, f"{prefix}.{i}") for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot store a {type(tree).__name__} in a checkpoint (at {prefix})")


def decode_tree(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `encode_tree`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__ndarray__" in tree:
            return tensors[tree["__ndarray__"]].numpy()
        if "__tuple__" in tree:
            return tuple(decode_tree(v, tensors) for v in tree["__tuple__"])
        if "__dict__" in tree:
            return {decode_tree(k, tensors): decode_tree(v, tensors) for k, v in tree["__dict__"]}
        return {k: decode_tree(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [decode_tree(v, tensors) for v in tree]
    return tree


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=False)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(directory: str | Path, weights: dict[str, torch.Tensor], state: dict[str, Any],
                    config: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: into `.tmp-NAME`, then rename to `directory`.

    An existing `directory` is replaced: it is first renamed aside (`.old-NAME`) and deleted only
    after the new one is in place; `load_checkpoint` falls back to the aside copy when a kill
    lands between the two renames.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(directory)
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / WEIGHTS))
    state_tensors: dict[str, torch.Tensor] = {}
    encoded = encode_tree(state, state_tensors)
    save_file(state_tensors, str(tmp / STATE_TENSORS))
    _write_json(tmp / STATE_JSON, {"format_version": FORMAT_VERSION, "state": encoded})
    _write_json(tmp / CONFIG_JSON, config)
    for name in (WEIGHTS, STATE_TENSORS):
        _fsync(tmp / name)
    return install_directory(tmp, directory)


def temporary_sibling(directory: Path) -> Path:
    """An empty `.tmp-NAME` beside `directory`, to be filled and then `install_directory`-ed."""
    tmp = directory.with_name(f".tmp-{directory.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def install_directory(tmp: Path, directory: Path) -> Path:
    """Move the fully written `tmp` to `directory`. A previous `directory` is renamed aside
    (`.old-NAME`) first and deleted last, so a kill at any point leaves one complete copy."""
    old = directory.with_name(f".old-{directory.name}")
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    _fsync(directory.parent)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint file is corrupt: {path} ({error})") from error


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint file is corrupt (not a valid safetensors file): {path} ({error})") from error


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; raise CheckpointError naming the bad file."""
    directory = Path(directory)
    if not directory.is_dir():
        aside = directory.with_name(f".old-{directory.name}")
        if not aside.is_dir():
            raise CheckpointError(f"no checkpoint at {directory}")
        directory = aside
    meta = _read_json(directory / STATE_JSON)
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION or "state" not in meta:
        raise CheckpointError(
            f"{directory / STATE_JSON}: not a planllm training state (format_version "
            f"{meta.get('format_version') if isinstance(meta, dict) else None!r}, expected {FORMAT_VERSION})"
        )
    state_tensors = _read_tensors(directory / STATE_TENSORS)
    try:
        state = decode_tree(meta["state"], state_tensors)
    except KeyError as error:
        raise CheckpointError(f"{directory / STATE_TENSORS} lacks tensor {error} named in {STATE_JSON}") from error
    config = _read_json(directory / CONFIG_JSON)
    if not isinstance(config, dict):
        raise CheckpointError(f"{directory / CONFIG_JSON}: expected a JSON object")
    return Checkpoint(_read_tensors(directory / WEIGHTS), state, config, directory)
