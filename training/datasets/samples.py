"""`planllm data samples`: a few real start/goal observations of a config's dataset, as .npz.

`planllm export --samples FILE` checks ONNX Runtime against torch on them and, with --int8,
calibrates the backbone's int8 quantization on their images; the exporter reads this file
only, so it never needs the dataset code. Images are written for datasets that render them
(the tabletop world), features otherwise.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config name or YAML (as in planllm train)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (as in planllm train)")
    parser.add_argument("--split", default="train", help="split to draw from (default train: calibration data)")
    parser.add_argument("--count", type=int, default=64, help="samples to write (default 64)")
    parser.add_argument("--observation", choices=("images", "features"), default="images",
                        help="images (rendered datasets only) or the model's features")
    parser.add_argument("--out", required=True, type=Path, help=".npz file to write")


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


def run(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.splits import load_split

    overrides = [*args.overrides, f"data.observation={args.observation}"]
    if args.observation == "images":
        overrides.append(f"data.eval_samples={args.count}" if args.split != "train" else f"data.train_samples={args.count}")
    config = load_config(args.config, overrides)
    if args.observation == "images" and config.data.dataset != "tabletop":
        raise SystemExit(f"planllm data samples: {config.data.dataset} has no images here; use --observation features")
    dataset = load_split(config.data, args.split, config.visual())
    path = write_samples(dataset, args.count, args.out)
    print(f"wrote {min(args.count, len(dataset))} {args.split} samples ({args.observation}) to {path}")
    return 0
