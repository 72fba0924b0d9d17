"""The bundled model (models/tabletop-tiny): present after install, under 30 MB, files as its
card records them, usable by `planllm plan` without --model, and planning the tabletop test
split at the SR its model card records."""
from __future__ import annotations

import json

import numpy as np
import pytest

from planllm_ros.cli import main as planllm
from planllm_ros.export.model_card import read_model_card, verify_files
from planllm_ros.runtime.cli import default_model_dir
from planllm_ros.runtime.planner import Planner

MAX_MB = 30


def recorded(card: dict) -> dict:
    """The card's torch-scored metrics on feature observations, on test."""
    metrics = card["metrics"]["test"]
    assert metrics["backend"] == "torch" and metrics["observation"] == "features"
    return metrics


@pytest.fixture(scope="module")
def bundled():
    path = default_model_dir()
    card = read_model_card(path)
    assert card is not None, f"the bundled model is missing: {path} has no model_card.json (see models/README.md)"
    return path, card


def test_bundled_model_is_complete_and_small(bundled):
    path, card = bundled
    size_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    assert size_mb < MAX_MB
    assert verify_files(path, card) == []
    assert {"onnx/backbone.onnx", "onnx/encoder.onnx", "onnx/heads.onnx", "llm/model.safetensors"} <= set(card["files"])
    assert "sr" in recorded(card)["closed"]


def test_plan_cli_uses_the_bundled_model(tmp_path, capsys):
    tabletop = pytest.importorskip("training.tabletop")
    frames = tabletop.scenario(seed=3).frames
    from PIL import Image

    Image.fromarray(frames[0]).save(tmp_path / "start.png")
    Image.fromarray(frames[-1]).save(tmp_path / "goal.png")
    assert planllm(["plan", str(tmp_path / "start.png"), str(tmp_path / "goal.png"), "--backend", "onnxruntime",
                    "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["step_ids"]) == len(result["captions"]) == 3


@pytest.mark.slow
def test_bundled_model_plans_the_test_split_at_its_recorded_sr(bundled):
    """Batch-1 planning through the deployed path (ONNX Runtime graphs + torch LLM) reaches the
    SR recorded at export (torch, batched); one sample of slack for float-level ties."""
    from training.evaluation.metrics import procedure_metrics
    from training.train.config import from_tree
    from training.train.splits import load_split

    path, card = bundled
    config = from_tree(json.loads((path / "train_config.json").read_text()), "train_config.json")
    metrics = recorded(card)
    dataset = load_split(config.data, metrics["split"], config.visual())
    assert len(dataset) == metrics["samples"]
    planner = Planner.from_dir(path, backend="onnxruntime", captions=False)
    pred = np.array([planner.plan(s.start, s.goal).step_ids for s in dataset.samples])
    gt = np.stack(dataset.sequences())
    sr = procedure_metrics(pred, gt)["sr"]
    assert abs(sr - metrics["closed"]["sr"]) <= 100.0 / len(dataset) + 1e-9
