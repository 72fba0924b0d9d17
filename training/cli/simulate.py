"""`planllm data simulate`: per-video features for CrossTask / COIN / NIV where the real ones are
absent, from the real annotations (training/datasets/simulate.py says how, and why they are
never benchmark results)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.datasets.base import DatasetError
from training.datasets.benchmarks import READERS
from training.datasets.simulate import NOT_COMPARABLE, simulate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (f"Write simulated per-video features for a benchmark dataset from its real annotations, "
                          f"in the real feature layout. {NOT_COMPARABLE}")
    parser.add_argument("--dataset", required=True, choices=sorted(READERS), help="benchmark to simulate")
    parser.add_argument("--root", required=True, type=Path, help="the dataset's annotation directory")
    parser.add_argument("--out", required=True, type=Path, help="directory for the feature files (created)")
    parser.add_argument("--dim", type=int, default=512, help="feature size (default 512, like S3D)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument("--margin", type=int, default=5, help="seconds of background after the last step")
    parser.add_argument("--video-noise", type=float, default=0.5, help="std of each video's nuisance offset")
    parser.add_argument("--frame-noise", type=float, default=1.0, help="std of the per-second noise")
    parser.add_argument("--descriptions", type=Path, default=None,
                        help="SCHEMA-format descriptions (default: descriptors_<dataset>.json in --root)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache for the description text embeddings")


def run(args: argparse.Namespace) -> int:
    try:
        written = simulate(args.dataset, args.root, args.out, dim=args.dim, seed=args.seed, margin=args.margin,
                           video_noise=args.video_noise, frame_noise=args.frame_noise,
                           descriptions=args.descriptions, cache_dir=args.cache_dir)
    except (DatasetError, ValueError) as err:
        print(f"planllm data simulate: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {written} simulated {args.dataset} feature files ({args.dim}-d) to {args.out}. {NOT_COMPARABLE}")
    return 0
