"""`planllm export --checkpoint DIR --out models/NAME`: merge LoRA, export ONNX, check parity,
optionally quantize the backbone to int8, write the model card (see planllm_ros.export.exporter)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path,
                        help="a `planllm train` run directory (its model/ is used) or any model folder")
    parser.add_argument("--out", required=True, type=Path, help="output model folder, e.g. models/tabletop-tiny")
    parser.add_argument("--name", default=None, help="model name for the card (default: the folder name)")
    parser.add_argument("--samples", type=Path, default=None,
                        help="real observations (.npz with start/goal, from `planllm data samples`): checked for "
                             "ONNX parity and, with --int8, the calibration images")
    parser.add_argument("--int8", action="store_true",
                        help="quantize the backbone graph to int8 (static, calibrated on --samples images); measure "
                             "the effect with `planllm eval --backend onnxruntime --split val`")
    parser.add_argument("--decoding", action="append", default=[], metavar="KEY=VALUE",
                        help="set an inference-time decoding setting chosen after training, e.g. "
                             "open_vocab.method=steps (repeatable)")
    parser.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines for this GPU (cached)")
    parser.add_argument("--fp16", action="store_true", help="TensorRT engines in fp16")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    import torch

    from planllm_ros.export.exporter import ExportError, export_model
    from planllm_ros.export.onnx_export import ParityError
    from planllm_ros.runtime.errors import PlannerError

    torch.manual_seed(0)
    try:
        card = export_model(args.checkpoint, args.out, args.name, args.samples, args.int8, args.tensorrt, args.fp16,
                            args.overwrite, args.decoding)
    except (ExportError, ParityError, PlannerError, FileNotFoundError) as error:
        print(f"planllm export: error: {error}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2**20
    print(f"exported {card['name']} to {args.out} ({size:.1f} MB, {len(card['files'])} files)")
    print(f"ONNX Runtime vs torch, max |diff|: {json.dumps(card['parity_max_abs_diff'])}")
    if card["source"]["int8"]:
        print(f"int8 backbone: {json.dumps(card['source']['int8'])}")
    print(f"add test metrics to the card: planllm eval --checkpoint {args.out} --split test --card")
    return 0
