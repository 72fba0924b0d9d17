"""Planner API on the torch backend: a real tiny model folder (PlanLLM.save_pretrained), image
and feature inputs, agreement with PlanLLM.predict, open-vocabulary labels, and a clear error
for every bad input or broken model folder."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from planllm_ros.model.config import OpenVocabConfig
from planllm_ros.runtime.errors import PlannerError
from planllm_ros.runtime.planner import Planner
from runtime_helpers import LABELS, save_tiny_model, tiny_config

rng = np.random.default_rng(0)


def features() -> np.ndarray:
    return rng.random(1280).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def planner(model_dir):
    planner = Planner.from_dir(model_dir, backend="torch", device="cpu")
    yield planner
    planner.close()


def test_plan_from_images_of_any_size_and_from_features(planner):
    assert planner.horizon == 3 and planner.step_labels == LABELS
    big = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    for start, goal in [(big, small), (features(), features()), (big, features())]:
        plan = planner.plan(start, goal)
        assert plan.horizon == 3 and len(plan.step_ids) == len(plan.labels) == len(plan.scores) == 3
        assert plan.labels == [LABELS[i] for i in plan.step_ids]
        assert all(0.0 < s <= 1.0 for s in plan.scores)
        assert len(plan.captions) == 3 and plan.open_vocab_labels is None and plan.backend == "torch"
        assert set(plan.timings_ms) == {"backbone", "heads", "captions", "decode", "total"}
        assert plan.timings_ms["total"] >= plan.timings_ms["heads"] + plan.timings_ms["captions"]


def test_plan_agrees_with_the_model_reference(planner, model_dir):
    """Same ids, scores and captions as PlanLLM.predict with the saved transition matrix."""
    start, goal = features(), features()
    plan = planner.plan(start, goal, horizon=3)
    transition = torch.as_tensor(planner.policy.transition)
    reference = planner.model.predict(torch.from_numpy(start)[None], torch.from_numpy(goal)[None], transition=transition)
    assert plan.step_ids == reference.step_ids[0].tolist()
    expected_scores = [float(reference.probs[0, t, i]) for t, i in enumerate(plan.step_ids)]
    assert np.allclose(plan.scores, expected_scores, atol=1e-6)
    assert plan.captions == reference.captions[0]


def test_open_vocabulary_labels_come_from_the_given_list(planner):
    """A list holding the model's own labels in another order names every planned step with its
    own label, wherever the list puts it (so the names come from matching the texts, not from
    positions in the list); a shorter, unknown list names steps with its own entries only, and a
    step the one-to-one mapping gave none of them to comes out unknown (None)."""
    own = [LABELS[i] for i in np.random.default_rng(3).permutation(len(LABELS))]
    assert own != LABELS
    plans = [planner.plan(features(), features(), labels=own) for _ in range(6)]
    for plan in plans:
        assert plan.open_vocab_labels == plan.labels
        assert "open_vocab" in plan.timings_ms and plan.open_vocab_method == OpenVocabConfig().method
    assert len({tuple(p.step_ids) for p in plans}) > 1  # several plans: the naming is not one constant answer
    candidates = ["grab a mug", "shut the drawer", "clean the counter"]
    for plan in (planner.plan(features(), features(), labels=candidates),
                 planner.plan(features(), features(), labels=candidates,
                              descriptions=["Take a mug from the shelf.", None, "Wipe the counter clean."])):
        assert len(plan.open_vocab_labels) == 3 and set(plan.open_vocab_labels) <= {*candidates, None}
        assert plan.open_vocab_unknown == [t for t, label in enumerate(plan.open_vocab_labels) if label is None]


def test_step_ids_come_before_the_captions_of_the_same_plan(planner):
    """on_steps gets the plan's step ids before the LLM writes; the plan returned is the same
    plan with its captions; captions=False plans the same ids without them."""
    start, goal = features(), features()
    reference = planner.plan(start, goal)
    first = []
    plan = planner.plan(start, goal, labels=LABELS, on_steps=first.append)
    (steps,) = first
    assert steps.step_ids == plan.step_ids == reference.step_ids and steps.scores == plan.scores
    assert steps.captions == [] and plan.captions == reference.captions and len(plan.captions) == 3
    assert steps.open_vocab_labels == plan.open_vocab_labels == plan.labels  # the steps method reads no captions
    assert "captions" not in steps.timings_ms and steps.timings_ms["total"] <= plan.timings_ms["total"]
    assert plan.timings_ms["total"] >= steps.timings_ms["total"] + plan.timings_ms["captions"] - 1e-6
    quick = planner.plan(start, goal, captions=False, on_steps=first.append)
    assert quick.step_ids == plan.step_ids and quick.captions == [] and len(first) == 1  # nothing follows
    assert planner.plan(start, goal).captions == plan.captions  # the planner's own policy is unchanged


def test_open_vocabulary_from_captions_follows_them(tmp_path):
    """A method that reads the captions names the plan once they are written, and is refused
    for a plan asked for without them."""
    config = tiny_config()
    config.decoding.open_vocab.method = "captions"
    planner = Planner.from_dir(save_tiny_model(tmp_path / "captions", config))
    first = []
    plan = planner.plan(features(), features(), labels=LABELS, on_steps=first.append)
    assert first[0].open_vocab_labels is None and len(plan.open_vocab_labels) == 3
    assert first[0].step_ids == plan.step_ids and plan.open_vocab_method == "captions"
    with pytest.raises(PlannerError, match="switched off"):
        planner.plan(features(), features(), labels=LABELS, captions=False)


def test_open_vocabulary_methods_that_need_no_captions_or_no_llm(tmp_path):
    """The steps method names plans of a model without an LLM branch; a method that reads the
    captions is refused, saying why, where they are off."""
    config = tiny_config()
    config.variant.use_llm = False
    config.decoding.open_vocab.method = "steps"
    no_llm = Planner.from_dir(save_tiny_model(tmp_path / "no-llm", config))
    renamed = [label.replace("the", "a") for label in LABELS]
    plan = no_llm.plan(features(), features(), labels=renamed)
    assert plan.open_vocab_method == "steps" and plan.captions == []
    assert plan.open_vocab_labels == [renamed[i] for i in plan.step_ids]  # a renaming: the closed plan, renamed
    config = tiny_config()
    config.decoding.open_vocab.method = "captions"
    quiet = Planner.from_dir(save_tiny_model(tmp_path / "captions", config), captions=False)
    assert "switched off" in quiet.open_vocab_problem()
    with pytest.raises(PlannerError, match="labels given, but open-vocabulary method 'captions' reads the LLM's"):
        quiet.plan(features(), features(), labels=renamed)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((64, 64, 3), dtype=np.float32), "HxWx3 uint8"),
    (np.zeros((64, 64), dtype=np.uint8), "HxWx3 uint8"),
    (np.zeros((64, 64, 4), dtype=np.uint8), "HxWx3 uint8"),
    (np.zeros((0, 64, 3), dtype=np.uint8), "empty image"),
    (np.zeros(512, dtype=np.float32), r"takes \(1280,\) features"),
    (np.full(1280, np.nan, dtype=np.float32), "NaN"),
    (np.zeros(1280, dtype=np.int64), "HxWx3 uint8"),
    ([0.0] * 1280, "numpy array or torch tensor"),
])
def test_bad_observations_are_refused_clearly(planner, bad, message):
    with pytest.raises(PlannerError, match=message) as info:
        planner.plan(bad, features())
    assert "start" in str(info.value)


def test_token_models_take_images_or_token_maps(tmp_path):
    directory = save_tiny_model(tmp_path / "tokens", tiny_config(tokens=True))
    planner = Planner.from_dir(directory, captions=False)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    from_images = planner.plan(image, image[::-1].copy())
    tokens = [planner.backbone()(torch.from_numpy(x)).squeeze(0).numpy() for x in (image, image[::-1].copy())]
    assert tokens[0].shape == (196, 96)
    assert planner.plan(*tokens).step_ids == from_images.step_ids
    with pytest.raises(PlannerError, match=r"takes \(196, 96\) features"):
        planner.plan(tokens[0][0], tokens[1][0])  # one token is not a token map


def test_wrong_horizon_and_bad_labels(planner):
    with pytest.raises(PlannerError, match="plans exactly 3 steps"):
        planner.plan(features(), features(), horizon=4)
    for labels in ([], ["ok", ""], "a single string", ["twice", "twice"]):
        with pytest.raises(PlannerError, match="labels"):
            planner.plan(features(), features(), labels=labels)
    with pytest.raises(PlannerError, match="descriptions: 1 given for 2 labels"):
        planner.plan(features(), features(), labels=["a", "b"], descriptions=["only one"])


def test_feature_model_refuses_images_saying_what_is_missing(tmp_path):
    s3d = save_tiny_model(tmp_path / "s3d", tiny_config(backbone="s3d", feature_dim=512))
    planner = Planner.from_dir(s3d)
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    with pytest.raises(PlannerError, match=r"'s3d' backbone, which this package cannot run: pass \(512,\) features"):
        planner.plan(image, image)
    plan = planner.plan(rng.random(512).astype(np.float32), rng.random(512).astype(np.float32))
    assert len(plan.step_ids) == 3
    features_only = save_tiny_model(tmp_path / "features", tiny_config(backbone=None, feature_dim=512))
    with pytest.raises(PlannerError, match="precomputed 512-d features and records no image backbone"):
        Planner.from_dir(features_only).plan(image, image)


def test_broken_model_folders_are_named(model_dir, tmp_path):
    with pytest.raises(PlannerError, match="does not exist"):
        Planner.from_dir(tmp_path / "nowhere")
    missing = shutil.copytree(model_dir, tmp_path / "missing")
    (missing / "model.safetensors").unlink()
    with pytest.raises(PlannerError, match="model.safetensors is missing"):
        Planner.from_dir(missing)
    corrupt = shutil.copytree(model_dir, tmp_path / "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(PlannerError, match="corrupt"):
        Planner.from_dir(corrupt)
    bad_config = shutil.copytree(model_dir, tmp_path / "config")
    data = json.loads((bad_config / "config.json").read_text())
    data["hidden_dims"] = 3
    (bad_config / "config.json").write_text(json.dumps(data))
    with pytest.raises(PlannerError, match="hidden_dims"):
        Planner.from_dir(bad_config)
    bad_transition = shutil.copytree(model_dir, tmp_path / "transition")
    (bad_transition / "transition.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(PlannerError, match="transition.safetensors"):
        Planner.from_dir(bad_transition)


def test_unknown_backend_and_unexported_folder(model_dir):
    with pytest.raises(PlannerError, match="unknown backend"):
        Planner.from_dir(model_dir, backend="tflite")
    with pytest.raises(PlannerError, match="planllm export"):
        Planner.from_dir(model_dir, backend="onnxruntime")


def test_beam_search_captions(model_dir):
    beam = Planner.from_dir(model_dir, num_beams=3)
    assert beam.policy.num_beams == 3
    plan = beam.plan(features(), features())
    assert len(plan.captions) == 3
    with pytest.raises(PlannerError, match="num_beams"):
        Planner.from_dir(model_dir, num_beams=0)


def test_runtime_never_imports_training(model_dir):
    """The node's import path: loading and planning must not pull in the offline trainer."""
    code = (
        "import sys, numpy as np\n"
        "from planllm_ros.runtime.planner import Planner\n"
        f"p = Planner.from_dir({str(model_dir)!r})\n"
        "p.plan(np.zeros(1280, np.float32), np.ones(1280, np.float32))\n"
        "bad = sorted(m for m in sys.modules if m == 'training' or m.startswith('training.'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
