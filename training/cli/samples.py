"""`planllm data samples`: write a few real start/goal observations of a config's dataset as .npz
(training/datasets/samples.py), for `planllm export --samples`."""
from __future__ import annotations

import argparse
from pathlib import Path

from training.datasets.samples import write_samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config name or YAML (as in planllm train)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (as in planllm train)")
    parser.add_argument("--split", default="train", help="split to draw from (default train: calibration data)")
    parser.add_argument("--count", type=int, default=64, help="samples to write (default 64)")
    parser.add_argument("--observation", choices=("images", "features"), default="images",
                        help="images (rendered datasets only) or the model's features")
    parser.add_argument("--out", required=True, type=Path, help=".npz file to write")


def run(args: argparse.Namespace) -> int:
    from training.train.config import load_config
    from training.train.splits import load_split

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
