"""Dataclass trees from plain dicts (YAML, JSON, `--set` overrides), checked field by field.

The model config (planllm_ros.model.config) and the training config (training.train.config) are both
trees of dataclasses read from files people edit by hand. `build` turns a dict into such a tree
and rejects, with the dotted key path, what would otherwise surface much later or never: an
unknown key (a typo silently falling back to a default), a value of the wrong type (`"big"` for
a batch size), a mapping where a value belongs. An int given for a float field becomes that
float, because YAML and JSON write `1` for `1.0`.

Supported field types: nested dataclasses, int, float, bool, str, `X | None`, `list[X]`,
`dict[str, X]` and `Any` (taken as is).

`split_assignment` and `assign` apply a command-line `key=value` (dotted key, YAML value) to a
raw tree before it is built, for `--set` of the training config and `--decoding` of the export.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration is malformed; the message names the file or key path and what is wrong."""


def build(cls: type[T], values: Any, where: str) -> T:
    """An instance of dataclass `cls` from the mapping `values`; missing keys keep their defaults.

    `where` names the tree in error messages (e.g. "config" or "tabletop-tiny.yaml: train");
    nested keys are appended to it with dots.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_shown(values)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}")
    return cls(**{name: convert(hints[name], value, f"{where}.{name}") for name, value in values.items()})


def convert(kind: Any, value: Any, where: str) -> Any:
    """`value` checked against the type annotation `kind` (and converted, for dataclasses and int -> float)."""
    if kind is Any:
        return value
    if dataclasses.is_dataclass(kind):
        return build(kind, value, where)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) != 1:
            raise TypeError(f"{where}: unions other than `X | None` are not supported ({kind})")
        return convert(options[0], value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_shown(value)}")
        return [convert(args[0], item, f"{where}.{i}") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_shown(value)}")
        return {convert(args[0], key, f"{where} key {key!r}"): convert(args[1], item, f"{where}.{key}")
                for key, item in value.items()}
    if kind is float and type(value) is int:
        return float(value)
    if kind in (int, float, bool, str):
        if type(value) is not kind:  # exact: True is an int to Python, never to a config
            raise ConfigError(f"{where}: expected {kind.__name__}, got {_shown(value)}")
        return value
    raise TypeError(f"{where}: field type {kind} is not supported by planllm_ros.config_tree")


def _shown(value: Any) -> str:
    """A value for an error message: scalars as written, containers by their type."""
    return type(value).__name__ if isinstance(value, (dict, list)) else repr(value)


def split_assignment(assignment: str, flag: str, example: str) -> tuple[list[str], Any]:
    """`key=value` -> (the dotted key's parts, the value read as YAML); `flag` and `example`
    name the option in errors."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{flag} {assignment!r}: expected key=value, e.g. {example}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"{flag} {assignment!r}: the value is not valid YAML ({error})") from error
    return key.split("."), _yaml11_float(value)


def assign(tree: dict[str, Any], parts: list[str], value: Any, where: str) -> None:
    """Set tree[parts[0]][parts[1]]... = value in place (list items by index), creating missing
    sections; `build` then checks the result. `where` starts error messages (option and key)."""
    node: Any = tree
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, part, where)]
            continue
        if not isinstance(node.get(part, {}), (dict, list)):
            raise ConfigError(f"{where}: {'.'.join(parts[:i + 1])} is a value, not a section")
        node = node.setdefault(part, {})
    if isinstance(node, list):
        node[_list_index(node, parts[-1], where)] = value
    else:
        node[parts[-1]] = value


def _yaml11_float(value: Any) -> Any:
    """YAML 1.1 reads `1e-4` (no dot) as a string; on the command line it means the number."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
        return float(value)
    return value


def _list_index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"{where}: {part!r} is not an index of a list of {len(node)}")
    return int(part)
