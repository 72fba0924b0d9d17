"""The one model-folder loader (planllm_ros.model.folder.load_model_folder) and the decoding
policy (planllm_ros.model.decoding.DecodingPolicy): run directories and model folders resolve
alike, every missing or corrupt file is named, load-time options are applied while loading, and
planners sharing one loaded model each plan by their own policy without changing the model."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from planllm_ros.model.config import OpenVocabConfig
from planllm_ros.model.decoding import DecodingPolicy, viterbi
from planllm_ros.model.folder import (MODEL_DIR, TRAIN_CONFIG_FILE, TRANSITION_FILE, ModelFolderError,
                                      load_model_folder, resolve)
from planllm_ros.runtime.backends import load_backend
from planllm_ros.runtime.planner import Planner
from runtime_helpers import save_tiny_model

rng = np.random.default_rng(0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("folder") / "tiny")


def test_a_run_directory_resolves_to_its_model_folder(model_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(model_dir, run / MODEL_DIR)
    (run / "checkpoint").mkdir()
    assert resolve(run) == run / MODEL_DIR and resolve(model_dir) == model_dir
    folder = load_model_folder(run)
    assert folder.path == run / MODEL_DIR and folder.transition.shape == (6, 6) and folder.train_config is None


def test_what_is_not_a_model_folder_is_named_with_what_to_do(model_dir, tmp_path):
    with pytest.raises(ModelFolderError, match="nowhere does not exist"):
        load_model_folder(tmp_path / "nowhere")
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")  # a training checkpoint has a config.json too
    with pytest.raises(ModelFolderError, match="not a `planllm train` run or a model folder.*planllm train --resume"):
        load_model_folder(checkpoint)
    bare = shutil.copytree(model_dir, tmp_path / "bare")
    (bare / TRANSITION_FILE).unlink()
    assert load_model_folder(bare).transition is None  # the Planner then decodes argmax
    with pytest.raises(ModelFolderError, match=f"{TRAIN_CONFIG_FILE} is missing .*; {TRANSITION_FILE} is missing"):
        load_model_folder(bare, require=(TRAIN_CONFIG_FILE, TRANSITION_FILE))
    (bare / TRAIN_CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        load_model_folder(bare)


def test_load_time_options_are_applied_while_loading(model_dir):
    folder = load_model_folder(model_dir, llm_dtype="bfloat16", backbone_checkpoint="/weights/mobilenet.pth")
    assert {p.dtype for p in folder.model.llm.model.parameters()} == {torch.bfloat16}
    assert folder.model.config.visual.backbone_checkpoint == "/weights/mobilenet.pth"
    plain = load_model_folder(model_dir)
    assert {p.dtype for p in plain.model.llm.model.parameters()} == {torch.float32}
    with pytest.raises(ValueError, match="llm_dtype must be one of"):
        load_model_folder(model_dir, llm_dtype="int8")


def test_the_policy_takes_the_folders_settings_and_the_callers_overrides(model_dir):
    model = load_model_folder(model_dir).model
    decoding = model.config.decoding
    own = DecodingPolicy.for_model(model, np.eye(6))
    assert (own.method, own.llm_weight, own.candidates, own.open_vocab) == \
        ("viterbi", decoding.llm_weight, decoding.candidates, decoding.open_vocab)
    assert own.uses_viterbi and not DecodingPolicy.for_model(model, None).uses_viterbi  # no matrix: argmax
    named = DecodingPolicy.for_model(model, None, llm_weight=0.5, open_vocab=OpenVocabConfig(method="captions"))
    assert named.llm_weight == 0.5 and named.open_vocab.method == "captions"
    assert own.open_vocab is not decoding.open_vocab  # the policy's settings are its own
    for overrides, message in [({"method": "beam"}, "decode must be one of"), ({"num_beams": 0}, "num_beams"),
                               ({"llm_weight": -1.0}, "llm_weight")]:
        with pytest.raises(ValueError, match=message):
            DecodingPolicy.for_model(model, None, **overrides)


def test_planners_sharing_a_model_plan_by_their_own_policies_and_leave_it_unchanged(model_dir):
    folder = load_model_folder(model_dir)
    model, transition = folder.model, folder.transition
    backend = load_backend("torch", model, folder.path)
    config = json.dumps(model.config.to_dict())
    generation = model.llm.base_model().generation_config.to_dict()
    policies = {"viterbi": DecodingPolicy.for_model(model, transition),
                "argmax": DecodingPolicy.for_model(model, transition, method="argmax", captions=False),
                "beams": DecodingPolicy.for_model(model, transition, num_beams=2),
                "reranked": DecodingPolicy.for_model(model, transition, llm_weight=1e6)}
    planners = {name: Planner(model, backend, folder.path, policy) for name, policy in policies.items()}
    inputs = [(rng.random(1280).astype(np.float32), rng.random(1280).astype(np.float32)) for _ in range(3)]
    first = {name: [planner.plan(*pair) for pair in inputs] for name, planner in planners.items()}
    again = {name: [planners[name].plan(*pair) for pair in inputs] for name in reversed(planners)}
    for name, plans in first.items():
        assert [p.step_ids for p in plans] == [p.step_ids for p in again[name]]
        assert [p.captions for p in plans] == [p.captions for p in again[name]]
    assert all(p.captions == [] for p in first["argmax"]) and all(len(p.captions) == 3 for p in first["viterbi"])
    alone = Planner.from_dir(model_dir, num_beams=2)
    assert [p.captions for p in first["beams"]] == [alone.plan(*pair).captions for pair in inputs]
    assert json.dumps(model.config.to_dict()) == config
    assert model.llm.base_model().generation_config.to_dict() == generation


def test_viterbi_and_argmax_policies_decode_as_named(model_dir):
    folder = load_model_folder(model_dir)
    model = folder.model
    backend = load_backend("torch", model, folder.path)
    start, goal = rng.random(1280).astype(np.float32), rng.random(1280).astype(np.float32)
    plans = {method: Planner(model, backend, folder.path,
                             DecodingPolicy.for_model(model, folder.transition, method=method)).plan(start, goal)
             for method in ("viterbi", "argmax")}
    reference = model.predict(torch.from_numpy(start)[None], torch.from_numpy(goal)[None], captions=False)
    probs = reference.probs[0]
    assert plans["argmax"].step_ids == probs.argmax(-1).tolist()
    assert plans["viterbi"].step_ids == viterbi(probs, folder.transition).tolist()
