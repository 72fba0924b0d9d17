"""Dataclass trees from plain dicts (YAML, JSON, `--set` overrides), checked field by field.

The model config (planllm_ros.model.config) and the training config (training.config) are both
trees of dataclasses read from files people edit by hand. `build` turns a dict into such a tree
and rejects, with the dotted key path, what would otherwise surface much later or never: an
unknown key (a typo silently falling back to a default), a value of the wrong type (`"big"` for
a batch size), a mapping where a value belongs. An int given for a float field becomes that
float, because YAML and JSON write `1` for `1.0`.

Supported field types: nested dataclasses, int, float, bool, str, `X | None`, `list[X]`,
`dict[str, X]` and `Any` (taken as is).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

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
