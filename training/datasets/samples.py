"""A few real start/goal observations of a dataset, as .npz (`planllm data samples` writes them).

`planllm export --samples FILE` checks ONNX Runtime against torch on them and, with --int8,
calibrates the backbone's int8 quantization on their images; the exporter reads this file
only, so it never needs the dataset code. Images are written for datasets that render them
(the tabletop world), features otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_samples(dataset, count: int, out: Path) -> Path:
    """The first `count` samples' start and goal observations, written atomically."""
    if count < 1:
        raise ValueError(f"--count must be >= 1, got {count}")
    samples = dataset.samples[:count]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, start=np.stack([s.start for s in samples]), goal=np.stack([s.goal for s in samples]))
    os.replace(tmp, out)
    return out
