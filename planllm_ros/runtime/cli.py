"""`planllm plan START.png GOAL.png`: plan the steps between two images (or two .npy feature
vectors) with an exported or saved model; the bundled model when --model is not given."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from planllm_ros.runtime.backends import BACKENDS

DEFAULT_MODEL = "tabletop-tiny"


def default_model_dir() -> Path:
    from planllm_ros.paths import models_dir

    return models_dir() / DEFAULT_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("start", type=Path, help="start observation: an image file (PNG/JPEG) or a .npy feature vector")
    parser.add_argument("goal", type=Path, help="goal observation: an image file (PNG/JPEG) or a .npy feature vector")
    parser.add_argument("--model", type=Path, default=None,
                        help=f"model directory (default: the bundled models/{DEFAULT_MODEL})")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--horizon", type=int, default=None,
                        help="number of steps (default: a model with a state head chooses, 1 to 6, and says how "
                             "sure it is; any other plans the number it was trained for)")
    parser.add_argument("--labels", type=Path, default=None, metavar="FILE",
                        help="UTF-8 text file, one candidate label per line (blank lines and # comments skipped): "
                             "the plan's steps are also named from these labels, by the model's "
                             "decoding.open_vocab method; descriptions of them are read from "
                             "FILE's stem + .descriptions.json when it exists (as `planllm describe` writes them)")
    parser.add_argument("--backbone-checkpoint", default=None,
                        help="weights of the image backbone the model's features came from, when not bundled")
    parser.add_argument("--no-captions", action="store_true", help="skip LLM caption generation")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per op for torch and onnxruntime, at most the usable cores (default: "
                             "planllm_ros.runtime.threads' defaults, the fastest on a small shared CPU)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def load_observation(path: Path) -> np.ndarray:
    """An image file -> HxWx3 uint8 RGB; a .npy file -> its array (feature vector)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path}: not a valid .npy array ({error})") from error
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error


def run(args: argparse.Namespace) -> int:
    from planllm_ros.runtime.labels import read_label_file
    from planllm_ros.runtime.planner import Planner, PlannerError

    try:
        start, goal = load_observation(args.start), load_observation(args.goal)
        labels = read_label_file(args.labels) if args.labels else None
        planner = Planner.from_dir(args.model or default_model_dir(), backend=args.backend, device=args.device,
                                   backbone_checkpoint=args.backbone_checkpoint, captions=not args.no_captions,
                                   threads=args.threads)
        try:
            plan = planner.plan(start, goal, horizon=args.horizon, labels=labels and labels.labels,
                                descriptions=labels and labels.descriptions)
        finally:
            planner.close()
    except (FileNotFoundError, ValueError, PlannerError) as error:
        print(f"planllm plan: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(plan.to_dict()))
        return 0
    print(plan.instructions())
    if plan.horizon_probs is not None:
        print(f"{plan.horizon} steps, the number the model chose (p = {plan.horizon_confidence:.2f})")
    if plan.open_vocab_labels is not None:
        print(f"open-vocabulary labels ({plan.open_vocab_method}): " + "; ".join(label or "unknown" for label in plan.open_vocab_labels))
    timing = ", ".join(f"{k} {v:.1f} ms" for k, v in plan.timings_ms.items())
    print(f"[{plan.backend}] {timing}")
    return 0
