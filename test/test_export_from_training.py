"""`planllm export` from what `planllm train` writes: a run directory (its model/) and a
resumable training checkpoint. The card then carries the step descriptions and the metrics
reached on a split, and parity is also checked on real validation samples."""
from __future__ import annotations

import numpy as np
import pytest

from planllm_ros.export.exporter import export_model
from planllm_ros.runtime.planner import Planner

pytestmark = pytest.mark.slow  # a (very short) real training run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from training.config import load_config
    from training.trainer import train

    out = tmp_path_factory.mktemp("run") / "tabletop"
    config = load_config("tabletop-tiny", [
        "train.stage1.epochs=1", "train.stage2.epochs=1", "data.train_samples=48", "data.eval_samples=16",
        f"data.cache_dir={out.parent / 'cache'}",
    ])
    train(config, out, device="cpu")
    return out


def test_export_a_run_with_metrics_and_descriptions(run_dir, tmp_path):
    card = export_model(run_dir, tmp_path / "model", eval_split="test")
    assert card["source"]["kind"] == "trained model"
    assert card["metrics"]["split"] == "test" and card["metrics"]["samples"] == 16
    assert 0.0 <= card["metrics"]["closed"]["sr"] <= 100.0
    assert all(d.strip() for d in card["descriptions"]) and len(card["descriptions"]) == len(card["labels"])
    assert max(card["parity_max_abs_diff"].values()) <= 1e-4
    assert (tmp_path / "model" / "train_config.json").is_file()
    feats = np.random.default_rng(0).random((2, 196, 96)).astype(np.float32)  # the preset's block-13 token maps
    plans = [Planner.from_dir(tmp_path / "model", backend=b).plan(feats[0], feats[1]) for b in ("torch", "onnxruntime")]
    assert plans[0].step_ids == plans[1].step_ids


def test_export_a_training_checkpoint_gives_the_same_model(run_dir, tmp_path):
    """The resumable checkpoint holds the best stage-2 weights, which are the run's final model."""
    from_run = export_model(run_dir, tmp_path / "a")
    from_checkpoint = export_model(run_dir / "checkpoint", tmp_path / "b")
    assert from_checkpoint["source"]["kind"] == "training checkpoint"
    assert from_checkpoint["labels"] == from_run["labels"]
    assert np.allclose(from_checkpoint["transition"], from_run["transition"], atol=1e-6)
    assert from_checkpoint["files"]["onnx/heads.onnx"] == from_run["files"]["onnx/heads.onnx"]
