"""`planllm data ...`: dataset tools. Each tool registers its own sub-subcommand."""
from __future__ import annotations

import argparse
import importlib

# tool name -> module exposing add_arguments(parser) and run(args)
TOOLS: dict[str, tuple[str, str]] = {
    "simulate": ("training.datasets.simulate", "write simulated per-video features for a benchmark dataset"),
    "stats": ("training.datasets.stats", "count the samples of a benchmark dataset per split"),
    "tabletop": ("training.tabletop.cli", "generate the procedural tabletop dataset (images, features, preview)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    for name, (module_name, help_text) in TOOLS.items():
        tool_parser = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(tool_parser)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(TOOLS[args.tool][0]).run(args) or 0)
