"""Training configs: YAML files in training/configs/, presets by `extends`, `--set key=value` overrides.

A config has four sections:

    data:   which dataset, horizon, sizes, where the files are (DataConfig)
    train:  stages to run and their optimiser settings, batch, precision, logging (TrainConfig)
    model:  the PlanLLMConfig tree as a dict (planllm_ros.model.config), minus `horizon` and
            `num_steps`, which always come from the data (data.horizon, the dataset's vocabulary)
    name:   a label for logs

`extends: other.yaml` (path relative to the file, or a config name) deep-merges the file over
another, so the presets share one tiny and one vicuna7b base (`_tiny.yaml`, `_vicuna7b.yaml`).
The benchmark presets have no file of their own: `<dataset>-<base>` (crosstask, coin or niv;
tiny or vicuna7b) is `_<base>.yaml`, then `_benchmark.yaml`, then name=<dataset>-<base>,
data.dataset=<dataset>, data.root=${<DATASET>_ROOT} and data.features_dir=${<DATASET>_FEATURES}
(`benchmark_preset`); `preset_names()` lists every name.

Overrides name a dotted key; a key whose first part is not data/train/model/name belongs to the
model, so `--set variant.use_mim=false` is `model.variant.use_mim=false`. Values are parsed as
YAML (`true`, `3`, `1e-4`, `[2]`). Strings may use `${ENV_VAR}`; an unset variable is an error
that names the key (e.g. the Vicuna directory: `export VICUNA_DIR=...` or `--set llm.path=DIR`).
Sections are built and type-checked by planllm_ros.config_tree, whose ConfigError this module
raises for every fault.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from planllm_ros.config_tree import ConfigError, assign, build, split_assignment
from planllm_ros.model.config import CLOSED_SET_METHODS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SECTIONS = ("data", "train", "model", "name")
DERIVED_MODEL_KEYS = {"horizon": "data.horizon", "num_steps": "the dataset's vocabulary"}
BENCHMARKS = ("crosstask", "coin", "niv")  # each has a <dataset>-<base> preset for every base
BASES = ("tiny", "vicuna7b")  # training/configs/_<base>.yaml
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class DataConfig:
    dataset: str = "tabletop"  # tabletop | crosstask | coin | niv | episodes (imported by `planllm data episodes`)
    horizon: int = 3
    root: str | None = None  # benchmarks: the annotation root (e.g. ../shared/data/crosstask)
    features_dir: str | None = None  # benchmarks: per-video feature files
    observation: str = "features"  # tabletop: "features" (frozen MobileNetV2) or "images"
    train_samples: int | None = None  # tabletop: samples generated for train (None: its default); benchmarks: a seeded subset of the train windows (None: all)
    eval_samples: int | None = None  # tabletop: samples for val / test / novel / paraphrase
    descriptions: str | None = None  # benchmarks: SCHEMA descriptions file (default: the one in root)
    skip_missing_features: bool = False  # benchmarks: skip (with a warning) videos without features
    val_fraction: float = 0.1  # benchmarks: share of train videos carved off for validation
    seed: int = 0  # dataset generation / carving seed
    cache_dir: str | None = None


@dataclass
class StageConfig:
    epochs: int = 1
    lr: float = 1e-3
    lr_overrides: dict[str, float] = field(default_factory=dict)  # parameter-name substring -> lr
    weight_decay: float = 0.01
    warmup_steps: int = 0
    select: str = "loss"  # model selection on val: "loss" (lower is better) or sr | macc | miou | miou_set


@dataclass
class TrainConfig:
    stages: list[int] = field(default_factory=lambda: [1, 2])  # [2] = one-stage training
    stage1: StageConfig = field(default_factory=lambda: StageConfig(select="loss"))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(select="sr"))
    batch_size: int = 32  # per process
    grad_accum: int = 1
    seed: int = 0
    precision: str = "bf16"  # fp32 | bf16 | fp16 (autocast on GPU; the CPU always runs fp32)
    num_workers: int = 0
    eval_every: int = 0  # optimiser steps between val passes + checkpoints; 0 = once per epoch
    log_every: int = 10
    max_grad_norm: float = 1.0
    decode: str = "viterbi"  # closed-set decoding (CLOSED_SET_METHODS) of the val plans that select the weights
    # model.decoding.llm_weight candidates, chosen by val SR after the last stage (models with an
    # LLM branch and a step decoder); empty keeps the model config's value
    llm_weights: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0])
    progress: bool = True
    find_unused_parameters: bool = True  # DDP: some loss terms leave modules unused in a step

    def stage(self, number: int) -> StageConfig:
        return {1: self.stage1, 2: self.stage2}[number]


@dataclass
class RunConfig:
    data: DataConfig
    train: TrainConfig
    model: dict[str, Any]
    name: str = "planllm"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "data": dataclasses.asdict(self.data),
                "train": dataclasses.asdict(self.train), "model": copy.deepcopy(self.model)}

    def visual(self):
        """The model's VisualConfig (defaults filled in): which backbone and block the features come from."""
        from planllm_ros.model.config import PlanLLMConfig

        return PlanLLMConfig.from_dict(self.model_config_dict(0)).visual

    def model_config_dict(self, num_steps: int) -> dict[str, Any]:
        """The PlanLLMConfig dict with the data-derived fields filled in."""
        return {**copy.deepcopy(self.model), "horizon": self.data.horizon, "num_steps": int(num_steps)}


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def preset_names() -> list[str]:
    """Every config name `load_config` takes: the files in CONFIG_DIR and the benchmark presets."""
    files = {p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("_")}
    return sorted(files | {f"{dataset}-{base}" for dataset in BENCHMARKS for base in BASES})


def benchmark_preset(dataset: str, base: str) -> dict[str, Any]:
    """The raw tree of `<dataset>-<base>`: _<base>.yaml, _benchmark.yaml over it, then the dataset's
    name and its two path variables (e.g. ${CROSSTASK_ROOT}, ${CROSSTASK_FEATURES})."""
    variable = dataset.upper()
    named = {"name": f"{dataset}-{base}",
             "data": {"dataset": dataset, "root": f"${{{variable}_ROOT}}", "features_dir": f"${{{variable}_FEATURES}}"}}
    tree = _deep_merge(load_yaml_tree(CONFIG_DIR / f"_{base}.yaml"), load_yaml_tree(CONFIG_DIR / "_benchmark.yaml"))
    return _deep_merge(tree, named)


def load_tree(name_or_path: str | Path, _seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], str]:
    """The raw tree (`extends` followed, nothing expanded) of a config name or YAML path, and the
    file or preset it came from, for error messages."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return load_yaml_tree(path, _seen), str(path)
    name = str(name_or_path)
    if (CONFIG_DIR / f"{name}.yaml").is_file():
        return load_yaml_tree(CONFIG_DIR / f"{name}.yaml", _seen), str(CONFIG_DIR / f"{name}.yaml")
    dataset, _, base = name.partition("-")
    if dataset in BENCHMARKS and base in BASES:
        return benchmark_preset(dataset, base), f"{name} ({CONFIG_DIR / f'_{base}.yaml'} + _benchmark.yaml)"
    raise ConfigError(f"unknown config {name!r}: expected a YAML path or one of {preset_names()}")


def load_yaml_tree(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file, following `extends` chains."""
    path = path.resolve()
    if path in _seen:
        raise ConfigError(f"{path}: `extends` loops back to itself")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(tree).__name__}")
    parent = tree.pop("extends", None)
    if parent is None:
        return tree
    sibling = path.parent / parent
    parent_tree = load_yaml_tree(sibling, (*_seen, path)) if sibling.is_file() else load_tree(parent, (*_seen, path))[0]
    return _deep_merge(parent_tree, tree)


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply one `key=value` (dotted key, YAML value) to a raw config tree in place; a key outside
    the top-level sections is a model key."""
    parts, value = split_assignment(assignment, "--set", "variant.use_mim=false")
    key = ".".join(parts)
    if parts[0] not in SECTIONS:
        parts = ["model", *parts]
    assign(tree, parts, value, f"--set {key}")


def _expand_env(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(
                f"{where} uses ${{{name}}}, which is not set: export {name}=... or pass --set {where}=VALUE"
            )
        return os.environ[name]

    return _ENV.sub(substitute, value)


def _validate(config: RunConfig, source: str) -> None:
    data, train = config.data, config.train
    checks = [
        (data.dataset in ("tabletop", "crosstask", "coin", "niv", "episodes"),
         f"data.dataset must be tabletop, crosstask, coin, niv or episodes, got {data.dataset!r}"),
        (data.horizon >= 1, f"data.horizon must be >= 1, got {data.horizon!r}"),
        (0.0 < data.val_fraction < 1.0, f"data.val_fraction must be in (0, 1), got {data.val_fraction!r}"),
        (len(train.stages) > 0 and all(s in (1, 2) for s in train.stages) and train.stages == sorted(set(train.stages)),
         f"train.stages must be [1, 2], [1] or [2], got {train.stages!r}"),
        (train.precision in ("fp32", "bf16", "fp16"), f"train.precision must be fp32, bf16 or fp16, got {train.precision!r}"),
        (train.decode in CLOSED_SET_METHODS, f"train.decode must be one of {CLOSED_SET_METHODS}, got {train.decode!r}"),
        (train.batch_size >= 1 and train.grad_accum >= 1, "train.batch_size and train.grad_accum must be >= 1"),
    ]
    for number in (1, 2):
        stage = train.stage(number)
        checks.append((stage.select in ("loss", "sr", "macc", "miou", "miou_set"),
                       f"train.stage{number}.select must be loss, sr, macc, miou or miou_set, got {stage.select!r}"))
        checks.append((stage.epochs >= 1, f"train.stage{number}.epochs must be >= 1, got {stage.epochs!r}"))
    for key, where in DERIVED_MODEL_KEYS.items():
        checks.append((key not in config.model, f"model.{key} is not set in a config: it comes from {where}"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{source}: {message}")


def from_tree(tree: dict[str, Any], source: str = "config") -> RunConfig:
    """A validated RunConfig from a raw (merged, overridden) tree."""
    tree = _expand_env(tree, "")
    unknown = sorted(set(tree) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}; expected {list(SECTIONS)} (and `extends`)")
    config = RunConfig(
        data=build(DataConfig, _section(tree, "data"), f"{source}: data"),
        train=build(TrainConfig, _section(tree, "train"), f"{source}: train"),
        model=dict(tree.get("model") or {}),
        name=str(tree.get("name", "planllm")),
    )
    _validate(config, source)
    return config


def _section(tree: dict[str, Any], name: str) -> Any:
    """A top-level section; absent or empty (`train:` with nothing under it) means all defaults."""
    value = tree.get(name)
    return {} if value is None else value


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a config by name or path, apply `key=value` overrides, validate."""
    tree, source = load_tree(name_or_path)
    for assignment in overrides:
        apply_override(tree, assignment)
    return from_tree(tree, source)
