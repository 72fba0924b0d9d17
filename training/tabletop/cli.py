"""`planllm data tabletop`: write a tabletop dataset (PNG images + JSON index, features when
asked) and/or a preview contact sheet.

    planllm data tabletop --out DIR --samples N [--horizon T] [--seed S] [--split SPLIT]
                          [--features [--layer K]] [--cache-dir DIR] [--preview FILE.png]

DIR gets images/NNNNN_start.png and NNNNN_goal.png, index.json (vocabulary, tasks and one
record per sample: image files, step ids, step labels, task, episode), descriptions.json (the
SCHEMA-format step descriptions) and, with --features, features.npz (start, goal: N x L x C float16
token maps of the frozen default backbone's block --layer, plus steps).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.tabletop.dataset import MAX_HORIZON, SPLITS, load_tabletop, write_descriptions_json
from training.tabletop.preview import write_preview


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


def _write_dataset(ds, out: Path) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i, sample in enumerate(tqdm(ds.samples, desc="write", unit="sample")):
        names = {}
        for which in ("start", "goal"):
            names[which] = f"images/{i:05d}_{which}.png"
            Image.fromarray(getattr(sample, which)).save(out / names[which])
        records.append({**names, "steps": sample.steps.tolist(), "labels": ds.step_labels(sample),
                        "task": sample.task, "episode": sample.video})
    write_descriptions_json(out / "descriptions.json")
    index = {"name": ds.name, "split": ds.split, "horizon": ds.horizon, "labels": list(ds.vocab.labels),
             "tasks": list(ds.vocab.tasks), "task_steps": {str(k): list(v) for k, v in ds.vocab.task_steps.items()},
             "descriptions": "descriptions.json", "samples": records}
    (out / "index.json").write_text(json.dumps(index, indent=1))


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.preview is None:
        raise SystemExit("planllm data tabletop: give --out DIR, --preview FILE.png, or both")
    if args.samples < 1:
        raise SystemExit(f"planllm data tabletop: --samples must be >= 1, got {args.samples}")
    if not 1 <= args.horizon <= MAX_HORIZON:
        raise SystemExit(f"planllm data tabletop: --horizon must be in 1..{MAX_HORIZON}, got {args.horizon}")
    ds = load_tabletop(args.split, args.horizon, args.seed, args.samples, observation="images")
    if args.out is not None:
        _write_dataset(ds, args.out)
        if args.features:
            feats = load_tabletop(args.split, args.horizon, args.seed, args.samples, cache_dir=args.cache_dir,
                                  layer=args.layer)
            np.savez(args.out / "features.npz", start=np.stack([s.start for s in feats.samples]),
                     goal=np.stack([s.goal for s in feats.samples]), steps=np.stack([s.steps for s in feats.samples]))
        print(f"wrote {len(ds)} {ds.split} samples (T={ds.horizon}) to {args.out}")
    if args.preview is not None:
        print(f"wrote preview {write_preview(ds, args.preview)}")
    return 0
