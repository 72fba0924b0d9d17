"""`planllm data TOOL ...`: dataset tools. Each tool lives in its own module, imported only
when it runs (planllm_ros.cli_dispatch), so one tool's missing dependency never breaks another."""
from __future__ import annotations

import argparse

from planllm_ros.cli_dispatch import Commands, dispatch

# tool name -> (module exposing add_arguments(parser) and run(args), one-line help)
TOOLS: Commands = {
    "episodes": ("training.cli.episodes", "your own annotated recordings: validate, preview, import, stats"),
    "samples": ("training.cli.samples", "write a few real observations (.npz) for export parity and int8 calibration"),
    "simulate": ("training.cli.simulate", "write simulated per-video features for a benchmark dataset"),
    "stats": ("training.cli.stats", "count the samples of a benchmark dataset per split"),
    "tabletop": ("training.cli.tabletop", "generate the procedural tabletop dataset (images, features, preview)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "tools:\n" + "\n".join(f"  {name:<10} {text}" for name, (_, text) in TOOLS.items()) + \
        "\n\n`planllm data TOOL --help` explains each tool."
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("tool", choices=sorted(TOOLS), metavar="TOOL", help="one of: " + ", ".join(TOOLS))
    parser.add_argument("tool_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    return dispatch(TOOLS, args.tool, f"planllm data {args.tool}", args.tool_args)
