"""PlanLLMConfig and the config toolkit under it: JSON/YAML round trip, clear errors naming the key path."""
import json
from dataclasses import dataclass, field

import pytest
import yaml

from planllm_ros.config_tree import build
from planllm_ros.model.config import ConfigError, PlanLLMConfig
from training.train import config as training_config


def test_round_trip_through_json_and_yaml():
    config = PlanLLMConfig.from_dict({"horizon": 4, "hidden_dim": 64, "llm": {"lora": {"r": 4, "target_modules": ["q_proj"]}},
                                      "variant": {"planning": "step_only", "use_llm": False}})
    data = config.to_dict()
    assert PlanLLMConfig.from_dict(json.loads(json.dumps(data))) == config
    assert PlanLLMConfig.from_dict(yaml.safe_load(yaml.safe_dump(data))) == config
    assert config.llm.lora.r == 4 and config.llm.lora.target_modules == ["q_proj"] and config.horizon == 4


@pytest.mark.parametrize("data, message", [
    ({"horizn": 3}, "horizn"),
    ({"llm": {"lora": {"rank": 4}}}, "config.llm.lora"),
    ({"variant": {"planning": "magic"}}, "variant.planning"),
    ({"variant": {"planning": "llm_only", "use_llm": False}}, "llm_only"),
    ({"hidden_dim": 30}, "divisible"),
    ({"visual": 3}, "config.visual"),
])
def test_bad_configs_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        PlanLLMConfig.from_dict(data)


@dataclass
class _Leaf:
    rate: float = 0.5
    tags: list[str] = field(default_factory=list)


@dataclass
class _Tree:
    leaf: _Leaf = field(default_factory=_Leaf)
    leaves: dict[str, _Leaf] = field(default_factory=dict)
    path: str | None = None
    count: int = 1


def test_config_tree_builds_nested_lists_dicts_and_optionals():
    tree = build(_Tree, {"leaf": {"rate": 2, "tags": ["a"]}, "leaves": {"x": {"rate": 1.5}}, "path": None}, "t")
    assert tree == _Tree(leaf=_Leaf(2.0, ["a"]), leaves={"x": _Leaf(1.5)}, path=None)
    assert type(tree.leaf.rate) is float  # YAML/JSON `2` for a float field becomes 2.0


@pytest.mark.parametrize("values, message", [
    ({"leaf": {"rat": 1.0}}, r"t.leaf: unknown key\(s\) \['rat'\]; allowed: \['rate', 'tags'\]"),
    ({"leaves": {"x": {"tags": ["a", 3]}}}, "t.leaves.x.tags.1: expected str, got 3"),
    ({"leaves": ["x"]}, "t.leaves: expected a mapping, got list"),
    ({"leaf": {"tags": "a"}}, "t.leaf.tags: expected a list, got 'a'"),
    ({"count": True}, "t.count: expected int, got True"),
    ({"count": 1.0}, "t.count: expected int, got 1.0"),
    ({"leaf": {"rate": False}}, "t.leaf.rate: expected float, got False"),
    ({"path": 3}, "t.path: expected str, got 3"),
    ({"leaf": None}, "t.leaf: expected a mapping, got None"),
])
def test_config_tree_names_the_key_path_of_a_bad_value(values, message):
    with pytest.raises(ConfigError, match=message):
        build(_Tree, values, "t")


def test_model_and_training_configs_raise_one_error_class():
    assert training_config.ConfigError is ConfigError
    with pytest.raises(ConfigError, match=r"config.loss.vlc: expected float, got 'high'"):
        PlanLLMConfig.from_dict({"loss": {"vlc": "high"}})
