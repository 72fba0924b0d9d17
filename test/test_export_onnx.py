"""`planllm export` end to end on a real tiny model: LoRA merged, ONNX graphs with a dynamic
batch, ONNX Runtime within 1e-4 of torch (random inputs and real tabletop renders), the model
card, and the exported folder planning exactly like the trained (unmerged) model."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from planllm_ros.cli import main as planllm
from planllm_ros.export.exporter import ExportError, export_model
from planllm_ros.export.model_card import read_model_card, verify_files
from planllm_ros.export.onnx_export import ParityError, check_parity, encoder_inputs, export_onnx
from planllm_ros.runtime.backends.tensorrt_engines import tensorrt_unavailable_reason
from planllm_ros.model.planllm import PlanLLM
from planllm_ros.runtime.errors import PlannerError
from planllm_ros.runtime.planner import Planner
from runtime_helpers import LABELS, build_tiny_model, save_tiny_model, tiny_config

PARITY = 1e-4


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A saved tiny model with trained-looking (non-zero) LoRA adapters."""
    return save_tiny_model(tmp_path_factory.mktemp("trained") / "model")


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported") / "tiny"
    assert planllm(["export", "--checkpoint", str(trained), "--out", str(out)]) == 0
    return out


def test_exported_folder_and_model_card(exported):
    for graph in ("encoder", "heads"):
        model = onnx.load(str(exported / "onnx" / f"{graph}.onnx"))
        onnx.checker.check_model(model)
        assert all(i.type.tensor_type.shape.dim[0].dim_param == "batch" for i in model.graph.input)
    llm_weights = (exported / "llm" / "model.safetensors").read_bytes()
    assert b"lora_" not in llm_weights[:20000]  # merged: the header names no adapter tensors
    card = read_model_card(exported)
    assert card["labels"] == LABELS and card["horizon"] == 3
    assert np.allclose(np.asarray(card["transition"]).sum(axis=1), 1.0, atol=1e-6)
    assert set(card["parity_max_abs_diff"]) == {"backbone.tokens", "encoder.visual_tokens", "encoder.state_tokens",
                                                "encoder.step_tokens", "heads.logits"}
    assert max(card["parity_max_abs_diff"].values()) <= PARITY
    assert {"onnx/encoder.onnx", "onnx/heads.onnx", "model.safetensors", "llm/model.safetensors"} <= set(card["files"])
    assert verify_files(exported, card) == []
    assert "| 2 | open the drawer |" in (exported / "MODEL_CARD.md").read_text()


def test_merged_export_plans_like_the_trained_model(trained, exported):
    original = PlanLLM.from_pretrained(trained)
    merged = PlanLLM.from_pretrained(exported)
    assert original.llm.lora_applied and not merged.llm.lora_applied
    generator = torch.Generator().manual_seed(3)
    inputs = encoder_inputs(original, 4, generator)
    a = original.predict(inputs["start"], inputs["goal"])
    b = merged.predict(inputs["start"], inputs["goal"])
    assert torch.equal(a.step_ids, b.step_ids) and a.captions == b.captions
    assert torch.allclose(a.probs, b.probs, atol=PARITY)


def test_parity_on_random_inputs_at_several_batch_sizes(exported):
    model = PlanLLM.from_pretrained(exported)
    generator = torch.Generator().manual_seed(7)
    worst = check_parity(model, exported, [encoder_inputs(model, b, generator) for b in (1, 3, 8)])
    assert max(worst.values()) <= PARITY


def test_parity_feeds_the_heads_the_h_the_robot_computes(exported, monkeypatch):
    """The heads graph is checked on h from read_prompt, the LLM pass the pipeline runs, never
    on the training pass's."""
    from planllm_ros.model.llm import LLMBranch

    def training_pass(*args, **kwargs):
        raise AssertionError("parity must not read h from the training pass")

    model = PlanLLM.from_pretrained(exported)
    read = []
    original = LLMBranch.read_prompt
    monkeypatch.setattr(LLMBranch, "forward", training_pass)
    monkeypatch.setattr(LLMBranch, "read_prompt", lambda self, *a: read.append(1) or original(self, *a))
    worst = check_parity(model, exported, [encoder_inputs(model, 2, torch.Generator().manual_seed(1))])
    assert read and worst["heads.logits"] <= PARITY


def test_parity_check_catches_graphs_of_another_model(exported, tmp_path):
    mismatched = shutil.copytree(exported, tmp_path / "mismatched")
    export_onnx(build_tiny_model(seed=1), mismatched)
    model = PlanLLM.from_pretrained(exported)
    with pytest.raises(ParityError, match="more than 0.0001"):
        check_parity(model, mismatched, [encoder_inputs(model, 2)])


def test_onnxruntime_planner_matches_torch_on_real_tabletop_renders(exported):
    tabletop = pytest.importorskip("training.tabletop")
    samples = tabletop.load_tabletop("val", 3, num_samples=2, observation="images", progress=False).samples
    reference = Planner.from_dir(exported, backend="torch")
    onnx_planner = Planner.from_dir(exported, backend="onnxruntime", device="cpu")
    for sample in samples:
        expected, got = reference.plan(sample.start, sample.goal), onnx_planner.plan(sample.start, sample.goal)
        assert got.backend == "onnxruntime"
        assert got.step_ids == expected.step_ids and got.captions == expected.captions
        assert np.allclose(got.scores, expected.scores, atol=PARITY)
    onnx_planner.close()


@pytest.mark.parametrize("planning", ["step_only", "llm_only"])
def test_variants_export_and_plan(tmp_path, planning):
    source = save_tiny_model(tmp_path / "model", tiny_config(planning=planning))
    card = export_model(source, tmp_path / "out")
    graphs = sorted(p.stem for p in (tmp_path / "out" / "onnx").glob("*.onnx"))
    assert graphs == (["backbone", "encoder"] if planning == "llm_only" else ["backbone", "encoder", "heads"])
    assert max(card["parity_max_abs_diff"].values()) <= PARITY
    feats = np.random.default_rng(0).random((2, 1280)).astype(np.float32)
    plans = [Planner.from_dir(tmp_path / "out", backend=b).plan(feats[0], feats[1]) for b in ("torch", "onnxruntime")]
    assert plans[0].step_ids == plans[1].step_ids


def test_token_model_encoder_graph_matches_torch(tmp_path):
    """The block-13 token model: (B, 196, 96) token maps in, start/goal/change tokens out."""
    source = save_tiny_model(tmp_path / "model", tiny_config(tokens=True))
    card = export_model(source, tmp_path / "out")
    assert max(card["parity_max_abs_diff"].values()) <= PARITY
    encoder = onnx.load(str(tmp_path / "out" / "onnx" / "encoder.onnx"))
    start = next(i for i in encoder.graph.input if i.name == "start")
    assert [d.dim_value for d in start.type.tensor_type.shape.dim[1:]] == [196, 96]
    image = np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    plans = [Planner.from_dir(tmp_path / "out", backend=b).plan(image, image[:, ::-1].copy())
             for b in ("torch", "onnxruntime")]
    assert plans[0].step_ids == plans[1].step_ids and np.allclose(plans[0].scores, plans[1].scores, atol=PARITY)


def test_export_errors_name_the_problem(trained, exported, tmp_path):
    with pytest.raises(ExportError, match="exists"):
        export_model(trained, exported)
    with pytest.raises(ExportError, match="does not exist"):
        export_model(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="not a `planllm train` run"):
        export_model(tmp_path / "empty", tmp_path / "out")
    assert planllm(["export", "--checkpoint", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    if tensorrt_unavailable_reason():
        with pytest.raises(ExportError, match="--tensorrt: "):
            export_model(trained, tmp_path / "trt", tensorrt=True)


def test_broken_onnx_files_are_refused_clearly(exported, tmp_path):
    broken = shutil.copytree(exported, tmp_path / "broken")
    (broken / "onnx" / "heads.onnx").write_bytes(b"garbage")
    with pytest.raises(PlannerError, match="heads.onnx"):
        Planner.from_dir(broken, backend="onnxruntime")
    (broken / "onnx" / "heads.onnx").unlink()
    with pytest.raises(PlannerError, match="heads.onnx is missing"):
        Planner.from_dir(broken, backend="onnxruntime")
    card = json.loads((exported / "model_card.json").read_text())
    assert verify_files(broken, card) == ["onnx/heads.onnx"]


def test_decoding_settings_chosen_after_training_go_into_the_export(trained, tmp_path):
    card = export_model(trained, tmp_path / "out", decoding=["open_vocab.method=captions", "llm_weight=0.5"])
    assert card["config"]["decoding"]["open_vocab"]["method"] == "captions"
    assert PlanLLM.from_pretrained(tmp_path / "out").config.decoding.llm_weight == 0.5
    for bad in (["hidden_dim=3"], ["open_vocab.method=nonsense"], ["llm_weight"]):
        with pytest.raises(ExportError, match="--decoding"):
            export_model(trained, tmp_path / "bad", decoding=bad, overwrite=True)
