"""PlanLLMConfig: JSON/YAML round trip and clear errors."""
import json

import pytest
import yaml

from planllm_ros.model.config import ConfigError, PlanLLMConfig


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
