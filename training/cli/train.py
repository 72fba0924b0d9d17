"""`planllm train --config NAME|PATH [--set key=value ...] [--resume] [--out DIR]`.

The same command runs single-process or under torchrun (see training.train.distributed for multi-GPU
and multi-node launch lines). Output: OUT/checkpoint (resumable state), OUT/model (the selected
model, loadable with PlanLLM.from_pretrained and `planllm eval --checkpoint OUT`), OUT/log.csv,
OUT/curves-stage{1,2}.png and OUT/tensorboard when TensorBoard is installed.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from training.train.config import ConfigError, load_config, preset_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(preset_names())
    parser.add_argument("--config", required=True, help=f"a config name ({names}) or a YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set variant.use_mim=false --set train.stages=[2]")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")


def run(args: argparse.Namespace) -> int:
    from planllm_ros.model.config import ConfigError as ModelConfigError
    from training.datasets.base import DatasetError
    from training.train.checkpoint import CheckpointError
    from training.train.trainer import train

    try:
        config = load_config(args.config, args.overrides)
        out = args.out or Path("runs") / Path(args.config).stem
        model_dir = train(config, out, resume=args.resume, device=args.device)
    except (ConfigError, ModelConfigError, CheckpointError, DatasetError) as error:
        print(f"planllm train: {error}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once
        print(f"model written to {model_dir}")
    return 0
