"""Visual states of annotated episodes: frozen-backbone features of the frames around each step's
start and end, cached on disk.

A step boundary at t seconds is seen through the frames within `context` seconds of t (at most
FRAMES_PER_STATE of them, evenly spread, so a 30 fps camera costs no more than a slow one); its
state is their mean feature, as CrossTask averages the seconds around a step's start. Only
those frames go through the backbone, never the whole recording.

The backbone is the one the training config names (`model.visual`), built with
planllm_ros.model.backbone.build_backbone; whatever array it returns per frame is kept with its
trailing shape (a pooled vector or a token map) and stored as float16. Per-frame features are
cached per episode under a key of the backbone's name, weights hash and settings, the
recording's content hash and the frames picked, as .npz (plain arrays plus a JSON identity;
never pickle) written atomically; a file whose stored identity does not match is recomputed.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from training.datasets.base import DatasetError
from training.episodes.frames import Recording
from training.episodes.layout import EpisodeSpec

CONTEXT_S = 0.2
FRAMES_PER_STATE = 5
BATCH = 32


def default_cache_dir() -> Path:
    return Path(os.environ.get("PLANLLM_CACHE", Path.home() / ".cache" / "planllm_ros")) / "episodes"


def boundary_frames(times: np.ndarray, t: float, context: float) -> np.ndarray:
    """Indices of the frames within `context` s of `t` (at most FRAMES_PER_STATE, evenly spread)."""
    inside = np.flatnonzero(np.abs(times - t) <= context + 1e-9)
    if len(inside) > FRAMES_PER_STATE:
        inside = inside[np.linspace(0, len(inside) - 1, FRAMES_PER_STATE).round().astype(int)]
    return inside


def step_frames(spec: EpisodeSpec, recording: Recording, context: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(start frames, end frames) of every step; a step outside the recording, or a boundary
    without a frame near it, is a DatasetError naming the steps file and line."""
    times = recording.times
    duration = float(times[-1])
    out = []
    for step in spec.steps:
        if step.end_s > duration:
            raise DatasetError(f"{spec.steps_file}: line {step.line}: end_s {step.end_s:g} is after the end of the "
                               f"recording {recording.path} ({duration:.3f} s from its first frame)")
        pair = []
        for column, t in (("start_s", step.start_s), ("end_s", step.end_s)):
            frames = boundary_frames(times, t, context)
            if len(frames) == 0:
                nearest = float(times[np.abs(times - t).argmin()])
                raise DatasetError(f"{spec.steps_file}: line {step.line}: no frame within {context:g} s of "
                                   f"{column} {t:g} in {recording.path} (the nearest is at {nearest:.3f} s): frames "
                                   f"are missing there")
            pair.append(frames)
        out.append((pair[0], pair[1]))
    return out


def backbone_arguments(visual: Any) -> dict[str, Any]:
    """What build_backbone is given for the model's `visual` config (a VisualConfig)."""
    if visual.backbone is None:
        raise DatasetError("the config's model.visual.backbone is null (a features-only model): episodes need an "
                           "image backbone to turn their frames into features")
    arguments = {"name": visual.backbone, "checkpoint": visual.backbone_checkpoint, "layer": visual.layer}
    return {**arguments, "open_clip_model": visual.open_clip_model} if visual.backbone == "open_clip" else arguments


def build(arguments: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The frozen backbone and its identity: name, weights hash and settings (the checkpoint
    path is left out: the weights hash names the weights wherever they lie)."""
    from planllm_ros.model.backbone import build_backbone

    net = build_backbone(**arguments)
    settings = {k: v for k, v in arguments.items() if k not in ("name", "checkpoint")}
    return net, {"backbone": net.name, "weights_hash": net.weights_hash, "settings": settings}


@dataclass
class EpisodeStates:
    """Per step: the mean feature around its start and around its end, float16 (steps, *shape)."""

    start: np.ndarray
    end: np.ndarray


def _cache_path(cache_dir: Path, name: str, identity: dict) -> Path:
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / f"{name}-{key}.npz"


def _read_cache(path: Path, identity: dict) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["identity"])) != identity:
                return None
            return data["features"]
    except (OSError, KeyError, ValueError):
        return None


def _write_atomic(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # a reader never sees half a file


def _compute(net, recording: Recording, selection: np.ndarray, bar: tqdm) -> np.ndarray:
    """float16 features of the frames `selection` (identical frames go through the backbone once)."""
    rows: dict[int, np.ndarray] = {}
    same_as: dict[int, int] = {}
    seen: dict[bytes, int] = {}
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        with torch.inference_mode():
            out = net(torch.from_numpy(np.stack([frame for _, frame in pending]))).cpu().numpy()
        rows.update((index, row.astype(np.float16)) for (index, _), row in zip(pending, out))
        bar.update(len(pending))
        pending.clear()

    for index, frame in recording.read(selection):
        digest = hashlib.sha1(frame.tobytes()).digest()
        if digest in seen:
            same_as[index] = seen[digest]
            bar.update(1)
            continue
        seen[digest] = index
        pending.append((index, frame))
        if len(pending) == BATCH:
            flush()
    if pending:
        flush()
    rows.update((index, rows[original]) for index, original in same_as.items())
    return np.stack([rows[int(i)] for i in selection])


def episode_states(episodes: Sequence[tuple[EpisodeSpec, Recording]], arguments: dict[str, Any],
                   context: float = CONTEXT_S, cache_dir: str | Path | None = None,
                   progress: bool = True) -> tuple[dict[str, EpisodeStates], dict[str, Any], int]:
    """Start/end states of every step of every episode, the backbone identity, and how many
    episodes the cache served; frames not in the cache go through the backbone under one
    progress bar."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    net, backbone = build(arguments)
    plans = []
    for spec, recording in episodes:
        boundaries = step_frames(spec, recording, context)
        selection = np.unique(np.concatenate([np.concatenate(pair) for pair in boundaries]))
        identity = {**backbone, "source": recording.content_hash(), "topic": recording.topic,
                    "frames": hashlib.sha256(selection.astype(np.int64).tobytes()).hexdigest()[:16]}
        path = _cache_path(cache, spec.name, identity)
        plans.append((spec, recording, boundaries, selection, identity, path, _read_cache(path, identity)))
    todo = sum(len(selection) for *_, selection, _, _, cached in plans if cached is None)
    states = {}
    with tqdm(total=todo, desc=f"features ({backbone['backbone']})", unit="frame", disable=not progress or not todo) as bar:
        for spec, recording, boundaries, selection, identity, path, features in plans:
            if features is None:
                features = _compute(net, recording, selection, bar)
                _write_atomic(path, features=features, identity=np.array(json.dumps(identity, sort_keys=True)))
            states[spec.name] = _states(features, selection, boundaries)
    return states, backbone, sum(cached is not None for *_, cached in plans)


def _states(features: np.ndarray, selection: np.ndarray,
            boundaries: list[tuple[np.ndarray, np.ndarray]]) -> EpisodeStates:
    """Mean feature of each boundary's frames (`features` has one row per `selection` entry)."""
    row = {int(index): i for i, index in enumerate(selection)}

    def mean(frames: np.ndarray) -> np.ndarray:
        return features[[row[int(f)] for f in frames]].astype(np.float32).mean(axis=0).astype(np.float16)

    return EpisodeStates(np.stack([mean(start) for start, _ in boundaries]),
                         np.stack([mean(end) for _, end in boundaries]))
