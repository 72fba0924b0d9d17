"""A tabletop dataset as files: what `planllm data tabletop --out DIR` writes.

DIR gets images/NNNNN_start.png and NNNNN_goal.png, index.json (vocabulary, tasks and one
record per sample: image files, step ids, step labels, task, episode), descriptions.json (the
SCHEMA-format step descriptions) and, from a features dataset, features.npz (start, goal: N x L x C
float16 token maps of the frozen default backbone, plus steps).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.datasets.base import ProcedureDataset
from training.tabletop.dataset import write_descriptions_json


def write_dataset(ds: ProcedureDataset, out: Path) -> None:
    """An images dataset's PNG images, index.json and descriptions.json under `out`."""
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


def write_features(ds: ProcedureDataset, out: Path) -> Path:
    """A features dataset's start and goal token maps and steps, as `out`/features.npz."""
    path = out / "features.npz"
    np.savez(path, start=np.stack([s.start for s in ds.samples]), goal=np.stack([s.goal for s in ds.samples]),
             steps=np.stack([s.steps for s in ds.samples]))
    return path
