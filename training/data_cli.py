"""`planllm data TOOL ...`: dataset tools. Each tool lives in its own module, imported only
when it runs, so one tool's missing dependency never breaks another."""
from __future__ import annotations

import argparse
import importlib

# tool name -> (module exposing add_arguments(parser) and run(args), one-line help)
TOOLS: dict[str, tuple[str, str]] = {
    "episodes": ("training.episodes.cli", "your own annotated recordings: validate, preview, import, stats"),
    "samples": ("training.datasets.samples", "write a few real observations (.npz) for export parity and int8 calibration"),
    "simulate": ("training.datasets.simulate", "write simulated per-video features for a benchmark dataset"),
    "stats": ("training.datasets.stats", "count the samples of a benchmark dataset per split"),
    "tabletop": ("training.tabletop.cli", "generate the procedural tabletop dataset (images, features, preview)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "tools:\n" + "\n".join(f"  {name:<10} {text}" for name, (_, text) in TOOLS.items()) + \
        "\n\n`planllm data TOOL --help` explains each tool."
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("tool", choices=sorted(TOOLS), metavar="TOOL", help="one of: " + ", ".join(TOOLS))
    parser.add_argument("tool_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    module_name, help_text = TOOLS[args.tool]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"planllm data {args.tool}", description=help_text)
    module.add_arguments(parser)
    tool_args = parser.parse_args(args.tool_args)
    tool_args.tool = args.tool
    return int(module.run(tool_args) or 0)
