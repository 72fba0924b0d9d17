"""`planllm export --checkpoint DIR --out models/NAME`: merge LoRA, export ONNX, check parity,
write the model card (see planllm_ros.export.exporter)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="a `planllm train` run or model directory, a training checkpoint, or a saved PlanLLM folder")
    parser.add_argument("--out", required=True, type=Path, help="output model folder, e.g. models/tabletop-tiny")
    parser.add_argument("--name", default=None, help="model name for the card (default: the folder name)")
    parser.add_argument("--eval-split", default=None,
                        help="evaluate the exported model on this split (e.g. test) and record the metrics in the card")
    parser.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines for this GPU (cached)")
    parser.add_argument("--fp16", action="store_true", help="TensorRT engines in fp16")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    import torch

    from planllm_ros.export.exporter import ExportError, export_model
    from planllm_ros.export.onnx_export import ParityError
    from planllm_ros.runtime.errors import PlannerError
    from training.checkpoint import CheckpointError
    from training.config import ConfigError

    torch.manual_seed(0)
    try:
        card = export_model(args.checkpoint, args.out, args.name, args.eval_split, args.tensorrt, args.fp16,
                            args.overwrite)
    except (ExportError, ParityError, PlannerError, CheckpointError, ConfigError, FileNotFoundError) as error:
        print(f"planllm export: error: {error}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2**20
    print(f"exported {card['name']} to {args.out} ({size:.1f} MB, {len(card['files'])} files)")
    print(f"ONNX Runtime vs torch, max |diff|: {json.dumps(card['parity_max_abs_diff'])}")
    if card["metrics"]:
        print(f"metrics: {json.dumps(card['metrics'])}")
    return 0
