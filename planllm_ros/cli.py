"""The `planllm` command: one entry point, one module per subcommand.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int` and is imported
only when its subcommand runs (planllm_ros.cli_dispatch).
"""
from __future__ import annotations

import argparse
import sys

from planllm_ros.cli_dispatch import Commands, dispatch

# name -> (module, one-line help). Modules under training/ are offline tools; the ROS node
# itself never imports them.
SUBCOMMANDS: Commands = {
    "data": ("training.cli.data", "build, simulate and inspect datasets (tabletop, CrossTask, COIN, NIV)"),
    "describe": ("training.cli.describe", "expand step labels into SCHEMA-format descriptions with a local LLM"),
    "train": ("training.cli.train", "train a PlanLLM model (stage 1 and stage 2) from a YAML config"),
    "states": ("training.cli.states", "fit a state head and step-effect model onto a trained model (grounded decoding)"),
    "eval": ("training.cli.eval", "evaluate a checkpoint and print SR / mAcc / mIoU tables"),
    "export": ("planllm_ros.export.cli", "merge LoRA and export a checkpoint to ONNX (+ TensorRT)"),
    "plan": ("planllm_ros.runtime.cli", "plan the steps between a start image and a goal image"),
    "bench": ("training.cli.bench", "run a benchmark and write its table and plot to bench/results/"),
    "ros": ("planllm_ros.tools.cli", "ROS 2 tools: replay, record, demo-source"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each subparser is filled by its module on demand."""
    parser = argparse.ArgumentParser(
        prog="planllm",
        description="PlanLLM procedure planning: data, training, evaluation, export and planning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Dispatch `planllm COMMAND ...` to its module."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        build_parser().parse_args(argv)  # prints usage / help and exits
        return 2
    return dispatch(SUBCOMMANDS, argv[0], f"planllm {argv[0]}", argv[1:])


if __name__ == "__main__":
    sys.exit(main())
