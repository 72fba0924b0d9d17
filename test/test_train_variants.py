"""Ablations as config switches: the no-MIM/no-LLM baseline (stage 1 has nothing to train, so
it runs stage 2 only) and the frozen-LLM one-stage variant (no LoRA adapters anywhere)."""
from __future__ import annotations

import pytest
from safetensors.torch import load_file

from training.train.config import load_config
from training.train.logging_utils import read_log
from training.train.trainer import train

SETS = ["data.train_samples=32", "data.eval_samples=12", "train.batch_size=16", "train.stage1.epochs=1",
        "train.stage2.epochs=1", "train.progress=false", "train.log_every=1", "llm.max_new_tokens=6"]


def _stages_logged(out) -> set[str]:
    return {row["stage"] for row in read_log(out / "log.csv") if row["split"] == "train"}


@pytest.mark.slow
def test_baseline_without_mim_and_llm(tmp_path):
    model_dir = train(load_config("tabletop-tiny", [*SETS, "variant.use_mim=false", "variant.use_llm=false"]), tmp_path)
    weights = load_file(str(model_dir / "model.safetensors"))
    assert not any(k.startswith(("qformer.", "llm.")) for k in weights) and "step_tokens" in weights
    assert _stages_logged(tmp_path) == {"2"}
    metrics = {row["metric"] for row in read_log(tmp_path / "log.csv") if row["split"] == "train"}
    assert "loss_sd" in metrics and "loss_mim" not in metrics and "loss_asc" not in metrics


@pytest.mark.slow
def test_frozen_llm_one_stage(tmp_path):
    model_dir = train(load_config("tabletop-tiny", [*SETS, "variant.llm_trainable=false", "train.stages=[2]"]), tmp_path)
    weights = load_file(str(model_dir / "model.safetensors"))
    assert not any("lora_" in k for k in weights) and any(k.startswith("qformer.") for k in weights)
    assert _stages_logged(tmp_path) == {"2"}
