"""`planllm data tabletop`: write a tabletop dataset (PNG images + JSON index, features when
asked; training/tabletop/write.py gives the layout) and/or a preview contact sheet.

    planllm data tabletop --out DIR --samples N [--horizon T] [--seed S] [--split SPLIT]
                          [--features [--layer K]] [--cache-dir DIR] [--preview FILE.png]

The features are the frozen default backbone's block --layer.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from training.tabletop.dataset import MAX_HORIZON, SPLITS, load_tabletop
from training.tabletop.preview import write_preview
from training.tabletop.write import write_dataset, write_features


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="output folder for images, index.json (and features.npz)")
    parser.add_argument("--samples", type=int, default=16, help="number of samples (default 16)")
    parser.add_argument("--horizon", type=int, default=3, help=f"steps per sample, 1..{MAX_HORIZON} (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--features", action="store_true", help="also write backbone features (features.npz)")
    parser.add_argument("--layer", type=int, default=13,
                        help="MobileNetV2 block whose map gives the feature tokens (default 13, the tabletop preset's: "
                             "196 tokens of 96 channels; -1: the last block, 49 x 1280)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default ~/.cache/planllm_ros)")
    parser.add_argument("--preview", type=Path, default=None, help="write a contact sheet of start/goal pairs here")


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.preview is None:
        raise SystemExit("planllm data tabletop: give --out DIR, --preview FILE.png, or both")
    if args.samples < 1:
        raise SystemExit(f"planllm data tabletop: --samples must be >= 1, got {args.samples}")
    if not 1 <= args.horizon <= MAX_HORIZON:
        raise SystemExit(f"planllm data tabletop: --horizon must be in 1..{MAX_HORIZON}, got {args.horizon}")
    ds = load_tabletop(args.split, args.horizon, args.seed, args.samples, observation="images")
    if args.out is not None:
        write_dataset(ds, args.out)
        if args.features:
            write_features(load_tabletop(args.split, args.horizon, args.seed, args.samples, cache_dir=args.cache_dir,
                                         layer=args.layer), args.out)
        print(f"wrote {len(ds)} {ds.split} samples (T={ds.horizon}) to {args.out}")
    if args.preview is not None:
        print(f"wrote preview {write_preview(ds, args.preview)}")
    return 0
