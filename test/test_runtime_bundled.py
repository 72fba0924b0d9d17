"""The bundled model (models/tabletop-tiny): present after install, under 30 MB, files as its
card records them (the training commit among them), usable by `planllm plan` without --model,
planning the tabletop test split at the SR its model card records, and its shipped int8
backbone planning the val images as the card records."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest

from planllm_ros.cli import main as planllm
from planllm_ros.export.model_card import describe_training, read_model_card, verify_files
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
    assert describe_training(card["training"])  # which code trained it, or why that is not recorded


def test_plan_cli_uses_the_bundled_model(bundled, tmp_path, capsys):
    """Without --model, `planllm plan` gives exactly the plan of the bundled folder's Planner on
    the same image files, named with the labels its card records; without --horizon the model
    chooses the number of steps (a whole episode apart here: more than the 3 it was trained for)."""
    tabletop = pytest.importorskip("training.tabletop")
    frames = tabletop.scenario(seed=3).frames
    from PIL import Image

    from planllm_ros.runtime.cli import load_observation

    path, card = bundled
    files = [tmp_path / "start.png", tmp_path / "goal.png"]
    for frame, file in zip((frames[0], frames[-1]), files):
        Image.fromarray(frame).save(file)
    assert planllm(["plan", *map(str, files), "--backend", "onnxruntime", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    planner = Planner.from_dir(path, backend="onnxruntime")
    try:
        expected = planner.plan(*(load_observation(f) for f in files)).to_dict()
    finally:
        planner.close()
    assert len(result["step_ids"]) == result["horizon"] > card["horizon"] == 3
    assert len(result["horizon_probs"]) == 6 and result["horizon_probs"] == expected["horizon_probs"]
    assert result["labels"] == [card["labels"][i] for i in result["step_ids"]]
    for key in ("step_ids", "labels", "captions", "backend", "horizon"):
        assert result[key] == expected[key], key
    np.testing.assert_allclose(result["scores"], expected["scores"], atol=1e-5)


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
    pred = np.array([planner.plan(s.start, s.goal, horizon=card["horizon"]).step_ids for s in dataset.samples])
    gt = np.stack(dataset.sequences())
    sr = procedure_metrics(pred, gt)["sr"]
    assert abs(sr - metrics["closed"]["sr"]) <= 100.0 / len(dataset) + 1e-9


def test_the_shipped_backbone_is_the_int8_graph_the_card_describes(bundled):
    """The backbone graph is quantized (QDQ nodes around int8 weights), as the card's int8 record
    says; a float backbone here would make the check below a check of something else."""
    path, card = bundled
    assert card["source"]["int8"]["graphs"] == ["backbone"]
    graph = onnx.load(str(path / "onnx" / "backbone.onnx"), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 10  # every quantized convolution's weights


@pytest.mark.slow
def test_the_int8_backbone_plans_the_val_images_as_the_card_says(bundled):
    """The card's "val onnxruntime images" entry was scored through the shipped graphs (the int8
    backbone on rendered images, then the encoder and heads) on the val split of the model's own
    training config; scored the same way again, every metric is within one sample's worth of the
    recorded value (float kernels may flip a tie)."""
    from training.evaluation.evaluate import METRICS, evaluate, load_for_eval
    from training.train.config import from_tree
    from training.train.splits import load_split

    path, card = bundled
    recorded = card["metrics"]["val onnxruntime images"]
    assert (recorded["backend"], recorded["observation"], recorded["split"]) == ("onnxruntime", "images", "val")
    loaded = load_for_eval(path, backend="onnxruntime")
    config = from_tree(json.loads((path / "train_config.json").read_text()), "train_config.json")
    data = dataclasses.replace(config.data, observation="images")
    dataset = load_split(data, recorded["split"], config.visual())
    assert len(dataset) == recorded["samples"] and dataset.observation == "images"
    result = evaluate(loaded, dataset, loaded.policy(method=recorded["decode"]))
    slack = 100.0 / len(dataset) + 1e-9
    for metric in METRICS:
        assert abs(result["closed"][metric] - recorded["closed"][metric]) <= slack, (metric, result["closed"])
    # negative control: the float model on cached features (the card's "val" entry) scored these
    # samples more than the slack apart, so the check can tell its plans from the int8 graphs'
    assert abs(card["metrics"]["val"]["closed"]["sr"] - recorded["closed"]["sr"]) > slack
