"""Lazy command tables, shared by `planllm COMMAND`, `planllm data TOOL` and `planllm bench NAME`.

A table maps a name to (module, one-line help). The module exposes `add_arguments(parser)` and
a `run`, and is imported only when its command is parsed, so a `--help` stays fast and one
command's missing optional dependency never breaks the others.
"""
from __future__ import annotations

import argparse
import importlib
from types import ModuleType

Commands = dict[str, tuple[str, str]]


def load(commands: Commands, name: str, parser: argparse.ArgumentParser) -> ModuleType:
    """Import command `name`'s module and let it add its arguments to `parser`."""
    module = importlib.import_module(commands[name][0])
    module.add_arguments(parser)
    return module


def dispatch(commands: Commands, name: str, prog: str, argv: list[str]) -> int:
    """Parse `argv` with command `name`'s own parser (its help line as description) and run it."""
    parser = argparse.ArgumentParser(prog=prog, description=commands[name][1])
    module = load(commands, name, parser)
    return int(module.run(parser.parse_args(argv)) or 0)
