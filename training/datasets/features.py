"""Per-video feature files of the benchmark datasets, and the state features cut from them.

Layout: one file per video in a features directory, one row per second of video (N x D,
512-d S3D for the published features). Two encodings are read, both without pickle:
- `<stem>.npz` holding the array under the key `frames_features` (what the simulator writes);
- `<stem>.npy` holding the 2-D array itself.
The SCHEMA / PlanLLM peers ship `.npy` files of a pickled dict {"frames_features": ...}.
Loading those needs `allow_pickle=True`, which runs code from the file, so we refuse them;
convert trusted files once with
    np.savez(out, frames_features=np.load(f, allow_pickle=True)["frames_features"])
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from training.datasets.base import DatasetError

FEATURE_KEY = "frames_features"
SIMULATED_MARKER = "simulated.json"  # written beside simulated features (training.datasets.simulate)
EXTENSIONS = (".npz", ".npy")
NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"
CONTEXT = 1  # a state feature averages frames [s - CONTEXT, s + CONTEXT + 1) (the peers' M = 2)


def feature_file(features_dir: Path, stem: str) -> Path | None:
    """The video's feature file (`.npz` preferred over `.npy`), or None when neither exists."""
    for ext in EXTENSIONS:
        path = features_dir / f"{stem}{ext}"
        if path.is_file():
            return path
    return None


def read_features(path: Path) -> np.ndarray:
    """(N, D) float32 features of one video; a malformed file is a DatasetError naming it."""
    with path.open("rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if not magic.startswith(ZIP_MAGIC) and magic != NPY_MAGIC:
        raise DatasetError(f"{path}: not a .npy or .npz file (it starts with {magic!r})")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DatasetError(
                f"{path}: holds pickled Python objects (a peer-style .npy dict?), which are not loaded "
                f"for safety; store the array as .npz with key {FEATURE_KEY!r} or as a plain 2-D .npy"
            ) from err
        raise DatasetError(f"{path}: not a readable numpy file ({err})") from err
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: not a readable numpy file ({err})") from err
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if FEATURE_KEY not in loaded.files:
                raise DatasetError(f"{path}: no {FEATURE_KEY!r} array (has {sorted(loaded.files)})")
            array = loaded[FEATURE_KEY]
    else:
        array = loaded
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DatasetError(f"{path}: expected a non-empty (seconds, dim) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DatasetError(f"{path}: expected real numbers, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def write_features(path: Path, features: np.ndarray) -> None:
    """Write one video's (N, D) features as `.npz` with key `frames_features`."""
    np.savez(path, **{FEATURE_KEY: np.asarray(features, dtype=np.float32)})


def state_feature(features: np.ndarray, second: int) -> np.ndarray:
    """Mean of frames [second - 1, second + 2), clipped to the video (the SCHEMA convention)."""
    lo = max(0, second - CONTEXT)
    hi = min(second + CONTEXT + 1, features.shape[0])
    return features[lo:hi].mean(axis=0)
