"""The production path (`llm.path`: a local AutoModelForCausalLM directory such as Vicuna-7B)
exercised with a tiny saved Llama and its tokenizer: both stages train (LoRA on the loaded
model), the saved model references the directory instead of copying it, and eval loads it."""
from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from planllm_ros.cli import main
from planllm_ros.model.config import LLMConfig
from planllm_ros.model.llm import build_builtin_llm
from training.tabletop import vocabulary
from training.train.config import load_config
from training.train.trainer import train


@pytest.mark.slow
def test_train_and_eval_with_a_llama_from_a_local_directory(tmp_path, capsys):
    llm_dir = tmp_path / "tiny-llama"
    model, tokenizer = build_builtin_llm(LLMConfig(), vocabulary().labels, horizon=3)
    model.save_pretrained(str(llm_dir))
    tokenizer.save_pretrained(str(llm_dir))
    assert json.loads((llm_dir / "config.json").read_text())["model_type"] == "llama"

    config = load_config("tabletop-tiny", [
        f"llm.path={llm_dir}", "data.train_samples=32", "data.eval_samples=12", "train.batch_size=16",
        "train.stage1.epochs=1", "train.stage2.epochs=1", "train.progress=false", "llm.max_new_tokens=6"])
    model_dir = train(config, tmp_path / "run")

    weights = load_file(str(model_dir / "model.safetensors"))
    assert any("lora_" in k for k in weights)
    assert not any(k.startswith("llm.model.") and "lora_" not in k for k in weights)  # base LLM not copied
    assert not (model_dir / "llm").exists()
    assert json.loads((model_dir / "config.json").read_text())["llm"]["path"] == str(llm_dir)

    capsys.readouterr()  # drop the trainer's output
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--split", "val", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 12 and set(result["closed"]) == {"sr", "macc", "miou", "miou_set"}
    assert result["open"] is not None
