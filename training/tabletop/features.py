"""The feature cache: frozen-backbone token maps of rendered tabletop frames, kept on disk.

Rendering is cheap but the backbone is not (~30 images/s on two CPU cores), so features are
computed once per (backbone, weights hash, layer, generator source hash, split, seed, size,
horizon) and stored as .npz (plain arrays plus a JSON identity string; never pickle). Any change
of those, including an edit of the world, tasks or renderer source, gives a new key, so a stale
cache is never read; a file whose stored identity does not match its key is rebuilt.

Token maps are stored as float16 (N, L, C): MobileNetV2's block 13 (the tabletop default) gives
196 tokens of 96 channels, 37.6 kB a frame, so the preset's splits (about 12 000 distinct frames
at T=3) take about 450 MB; float16 keeps three significant digits, far below the frames' own
noise, at half of float32's size.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

_GENERATOR_FILES = ("world.py", "tasks.py", "sprites.py", "renderer.py", "dataset.py")
BATCH = 32


def default_cache_dir() -> Path:
    return Path(os.environ.get("PLANLLM_CACHE", Path.home() / ".cache" / "planllm_ros")) / "tabletop"


def generator_hash() -> str:
    """Hash of the sources that decide what the frames look like."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _GENERATOR_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_identity(backbone_identity: dict, identity: dict) -> dict:
    return {**backbone_identity, "generator": generator_hash(), **identity}


def cache_path(cache_dir: Path, full_identity: dict) -> Path:
    key = hashlib.sha256(json.dumps(full_identity, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / f"features-{full_identity['split']}-T{full_identity['horizon']}-{key}.npz"


def _read(path: Path, full_identity: dict, count: int) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(str(data["identity"]))
            features = data["features"]
    except (OSError, KeyError, ValueError):
        return None
    if stored != full_identity or features.shape[0] != count:
        return None
    return features


def compute_features(frames_of, count: int, backbone, progress: bool = True) -> np.ndarray:
    """Run the backbone over `count` frames produced by `frames_of(start, stop)`, in batches:
    float16 (count, L, C) token maps."""
    out = np.empty((count, backbone.num_tokens, backbone.out_dim), np.float16)
    with torch.inference_mode(), tqdm(total=count, desc=f"features ({backbone.name})", unit="img",
                                      disable=not progress) as bar:
        for start in range(0, count, BATCH):
            stop = min(count, start + BATCH)
            images = np.stack(frames_of(start, stop))
            out[start:stop] = backbone(torch.from_numpy(images)).cpu().numpy()
            bar.update(stop - start)
    return out


def cached_features(episodes, keys: list[tuple[int, int]], backbone: str = "mobilenet_v2", layer: int = -1,
                    cache_dir: str | Path | None = None, progress: bool = True, identity: dict | None = None) -> np.ndarray:
    """Token maps (len(keys), L, C) float16 of the frames `keys` = (episode index, state index),
    from the cache; `layer` is the backbone block whose map gives the tokens."""
    from planllm_ros.model.backbone import build_backbone

    net = build_backbone(backbone, layer=layer)
    full = cache_identity(net.identity, identity or {})
    path = cache_path(Path(cache_dir) if cache_dir else default_cache_dir(), full)
    features = _read(path, full, len(keys)) if path.is_file() else None
    if features is not None:
        return features
    features = compute_features(lambda a, b: [episodes[e].frame(k) for e, k in keys[a:b]], len(keys), net, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, features=features, identity=np.array(json.dumps(full, sort_keys=True)))
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return features
