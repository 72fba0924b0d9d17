"""training.train.config: every preset loads into a valid PlanLLMConfig; the benchmark presets are a
base plus the dataset; overrides reach the model or the trainer; typos, bad values and unset
paths fail with the key named."""
from __future__ import annotations

import pytest

from planllm_ros.model.config import ConfigError as ModelConfigError
from planllm_ros.model.config import PlanLLMConfig
from training.train.config import BASES, BENCHMARKS, CONFIG_DIR, ConfigError, load_config, preset_names

PRESET_ENV = {"VICUNA_DIR": "/models/vicuna-7b-v1.5", **{f"{d}_{k}": f"/data/{d}/{k}" for d in ("CROSSTASK", "COIN", "NIV")
                                                         for k in ("ROOT", "FEATURES")}}


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds_a_model_config(name, monkeypatch):
    for key, value in PRESET_ENV.items():
        monkeypatch.setenv(key, value)
    config = load_config(name)
    dataset, preset = name.rsplit("-", 1)
    model = PlanLLMConfig.from_dict(config.model_config_dict(num_steps=7))
    assert config.name == name and config.data.dataset == dataset
    assert model.num_steps == 7 and model.horizon == config.data.horizon
    assert config.train.stages == [1, 2]
    assert (model.llm.path is None) == (preset == "tiny")
    if preset == "vicuna7b":
        assert model.llm.path == "/models/vicuna-7b-v1.5" and config.train.precision == "bf16"


def test_preset_names_cover_files_and_benchmark_presets():
    names = preset_names()
    assert {f"{dataset}-{base}" for dataset in BENCHMARKS for base in BASES} <= set(names)
    assert {"tabletop-tiny", "tabletop-vicuna7b"} <= set(names) and not any(n.startswith("_") for n in names)
    assert all((CONFIG_DIR / f"_{base}.yaml").is_file() for base in BASES)


# What each benchmark preset file said before the presets became a base plus _benchmark.yaml.
PRESET_FILE = """extends: {base_file}
name: {dataset}-{base}
data:
  dataset: {dataset}
  horizon: 3
  root: ${{{env}_ROOT}}
  features_dir: ${{{env}_FEATURES}}
  val_fraction: 0.1
model:
  visual: {{feature_dim: 512, backbone: s3d}}
"""


@pytest.mark.parametrize("dataset", BENCHMARKS)
@pytest.mark.parametrize("base", BASES)
def test_benchmark_presets_equal_the_per_dataset_files_they_replace(dataset, base, tmp_path, monkeypatch):
    for key, value in PRESET_ENV.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / f"{dataset}-{base}.yaml"
    path.write_text(PRESET_FILE.format(base_file=CONFIG_DIR / f"_{base}.yaml", dataset=dataset, base=base,
                                       env=dataset.upper()))
    overrides = ["data.horizon=4", "variant.use_mim=false", "train.stage2.lr=1e-4"]
    for given in ([], overrides):
        assert load_config(f"{dataset}-{base}", given).to_dict() == load_config(path, given).to_dict()
    config = load_config(f"{dataset}-{base}", overrides)
    assert config.data.root == f"/data/{dataset.upper()}/ROOT" and config.data.horizon == 4
    assert config.model["variant"]["use_mim"] is False and config.train.stage2.lr == 1e-4


def test_benchmark_preset_paths_errors_and_extends(tmp_path, monkeypatch):
    monkeypatch.delenv("COIN_ROOT", raising=False)
    with pytest.raises(ConfigError, match=r"data.root uses \$\{COIN_ROOT\}"):
        load_config("coin-tiny")
    given = load_config("coin-tiny", ["data.root=/coin", "data.features_dir=/coin/s3d"])
    assert (given.data.root, given.data.features_dir, given.data.dataset) == ("/coin", "/coin/s3d", "coin")
    with pytest.raises(ConfigError, match=r"^coin-tiny \(.*_tiny.yaml \+ _benchmark.yaml\): data.horizon must be"):
        load_config("coin-tiny", ["data.root=/coin", "data.features_dir=/f", "data.horizon=0"])
    (tmp_path / "mine.yaml").write_text("extends: niv-vicuna7b\ndata: {root: /niv, features_dir: /niv/f}\n"
                                        "model: {llm: {path: /vicuna}}\n")
    mine = load_config(tmp_path / "mine.yaml")
    assert (mine.name, mine.data.dataset, mine.data.root, mine.train.precision) == ("niv-vicuna7b", "niv", "/niv", "bf16")


def test_overrides_route_to_model_and_trainer():
    config = load_config("tabletop-tiny", ["variant.use_mim=false", "model.variant.use_llm=false", "train.stages=[2]",
                                           "train.stage2.lr=1e-4", "data.horizon=4", "llm.lora.target_modules=[q_proj]"])
    model = PlanLLMConfig.from_dict(config.model_config_dict(num_steps=5))
    assert model.variant.use_mim is False and model.variant.use_llm is False
    assert model.llm.lora.target_modules == ["q_proj"] and model.horizon == 4
    assert config.train.stages == [2] and config.train.stage2.lr == 1e-4


def test_config_from_a_path_with_extends(tmp_path):
    (tmp_path / "mine.yaml").write_text(f"extends: {CONFIG_DIR / 'tabletop-tiny.yaml'}\ntrain: {{batch_size: 4}}\n")
    config = load_config(tmp_path / "mine.yaml")
    assert config.train.batch_size == 4 and config.data.dataset == "tabletop"
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "loop.yaml")


@pytest.mark.parametrize("overrides, message", [
    (["train.bogus=1"], r"train: unknown key\(s\) \['bogus'\]"),
    (["data.dataset=imagenet"], "data.dataset must be"),
    (["train.stages=[2, 1]"], "train.stages must be"),
    (["train.stage1.select=f1"], "train.stage1.select"),
    (["horizon=5"], "model.horizon is not set in a config"),
    (["novalue"], "expected key=value"),
    (["train.stages.7=1"], "not an index"),
])
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tabletop-tiny", overrides)


def test_unknown_model_key_is_caught_by_the_model_config():
    config = load_config("tabletop-tiny", ["variant.use_mimm=false"])
    with pytest.raises(ModelConfigError, match="use_mimm"):
        PlanLLMConfig.from_dict(config.model_config_dict(num_steps=5))


def test_unset_path_variable_and_unknown_config(monkeypatch):
    monkeypatch.delenv("VICUNA_DIR", raising=False)
    with pytest.raises(ConfigError, match=r"model.llm.path uses \$\{VICUNA_DIR\}"):
        load_config("tabletop-vicuna7b")
    assert load_config("tabletop-vicuna7b", ["llm.path=/opt/vicuna"]).model["llm"]["path"] == "/opt/vicuna"
    with pytest.raises(ConfigError, match="unknown config 'nope'") as error:
        load_config("nope")
    assert all(repr(name) in str(error.value) for name in preset_names())
    with pytest.raises(ConfigError, match="unknown config 'crosstask-huge'"):
        load_config("crosstask-huge")


def test_values_are_type_checked():
    assert load_config("tabletop-tiny", ["train.batch_size=8", "train.stage1.lr=1"]).train.stage1.lr == 1.0
    with pytest.raises(ConfigError, match=r"train.batch_size: expected int, got 'big'"):
        load_config("tabletop-tiny", ["train.batch_size=big"])
