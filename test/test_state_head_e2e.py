"""A state head end to end: trained with the model (`planllm train`, states.enabled) or fitted
onto a finished one (`planllm states`), carried by the model folder and the exporter, read by
grounded decoding in evaluation and in the Planner on both backends (ONNX parity), published by
the node; and CrossTask-format data with its real descriptions training one."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from node_helpers import planner_node, sending
from planllm_ros.cli import main as planllm
from planllm_ros.export.exporter import export_model
from planllm_ros.model.folder import STATE_MODEL_FILE, ModelFolderError, load_model_folder
from planllm_ros.model.horizon import AUTO
from planllm_ros.model.states import StateModel, normalize
from planllm_ros.runtime.planner import Planner
from training.evaluation.evaluate import load_for_eval, predict_split, predictions, step_ids
from training.train.config import load_config
from training.train.splits import load_split
from training.train.trainer import train

pytestmark = pytest.mark.slow  # real (very short) training runs

SETS = ["train.stage1.epochs=1", "train.stage2.epochs=1", "data.train_samples=48", "data.eval_samples=16",
        "train.progress=false"]
STATES = ["model.states.enabled=true", "train.decode=grounded"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def state_run(tmp_path_factory, cache) -> Path:
    out = tmp_path_factory.mktemp("run") / "states"
    train(load_config("tabletop-tiny", [*SETS, *STATES, f"data.cache_dir={cache}"]), out, device="cpu")
    return out


@pytest.fixture(scope="module")
def exported(state_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "tiny-states"
    export_model(state_run, out)
    return out


def test_training_writes_the_state_model_and_plans_through_it(state_run):
    folder = load_model_folder(state_run)
    states = folder.states
    assert isinstance(states, StateModel) and states.num_steps == folder.model.config.num_steps
    assert folder.model.config.decoding.method == "grounded" and folder.model.has_state_head
    # the propositions are the descriptions' own before/after sentences, nothing else
    described = {normalize(s) for name in ("before", "after")
                 for d in load_split(load_config("tabletop-tiny", SETS).data, "val").descriptions
                 for s in getattr(d, name)}
    assert {normalize(s) for s in states.sentences} <= described
    logged = {line.split(",")[4] for line in (state_run / "log.csv").read_text().splitlines()[1:]}
    assert "loss_state" in logged  # the head's loss is trained and validated with the rest
    # how it chooses the number of steps was fitted on val windows of every length
    choice = folder.model.config.decoding.horizon
    assert len(choice.offsets) == choice.max_horizon == 6 and choice.temperature > 0


def test_evaluation_and_the_planner_read_the_same_states(state_run, cache):
    loaded = load_for_eval(state_run)
    config = load_config("tabletop-tiny", [*SETS, f"data.cache_dir={cache}", "data.observation=images"])
    val = load_split(config.data, "val")
    policy = loaded.policy(captions=False)
    assert policy.method == "grounded" and policy.states is not None
    evaluated = predictions(loaded, val, policy)["closed"]
    untold = step_ids(predict_split(loaded, val, dataclasses.replace(policy, horizon=AUTO)))
    planner = Planner.from_dir(state_run, backend="torch", captions=False)
    for i in range(4):
        plan = planner.plan(val[i].start, val[i].goal, horizon=3)
        assert plan.step_ids == evaluated[i].tolist()
        # untold, the planner chooses the number of steps as evaluation does
        assert planner.plan(val[i].start, val[i].goal).step_ids == [j for j in untold[i].tolist() if j >= 0]
        for readings in (plan.start_state, plan.goal_state):
            assert isinstance(readings, list)
            assert all(r.sentence in planner.policy.states.sentences and 0.5 <= r.probability <= 1.0 for r in readings)
            assert [r.probability for r in readings] == sorted((r.probability for r in readings), reverse=True)


def test_export_carries_the_state_model_and_onnx_runtime_agrees(exported, state_run, cache):
    assert StateModel.load(exported / STATE_MODEL_FILE) == load_model_folder(state_run).states
    card = json.loads((exported / "model_card.json").read_text())
    assert max(v for k, v in card["parity_max_abs_diff"].items() if k.endswith("_states")) < 1e-4
    val = load_split(load_config("tabletop-tiny", [*SETS, f"data.cache_dir={cache}", "data.observation=images"]).data,
                     "val")
    reference, onnx = (Planner.from_dir(exported, backend=b, captions=False) for b in ("torch", "onnxruntime"))
    for sample in val.samples[:4]:
        a, b = reference.plan(sample.start, sample.goal), onnx.plan(sample.start, sample.goal)
        assert a.step_ids == b.step_ids
        assert [r.sentence for r in a.goal_state] == [r.sentence for r in b.goal_state]
    # a folder whose state model went missing is refused, saying which file
    (exported / STATE_MODEL_FILE).rename(exported / "moved.json")
    try:
        with pytest.raises(ModelFolderError, match=STATE_MODEL_FILE):
            load_model_folder(exported)
    finally:
        (exported / "moved.json").rename(exported / STATE_MODEL_FILE)


def test_a_state_head_fitted_onto_a_finished_model(tmp_path, cache, capsys):
    """`planllm states` adds a head to a run trained without one: the rest of the model is
    untouched, the decoding is chosen on val, and the folder loads with its state model."""
    run = tmp_path / "plain"
    train(load_config("tabletop-tiny", [*SETS, f"data.cache_dir={cache}"]), run, device="cpu")
    before = load_model_folder(run).model.trainable_state_dict()
    assert planllm(["states", "--model", str(run), "--out", str(tmp_path / "fitted"), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "val state loss per epoch" in out and "decoding.method =" in out
    fitted = load_model_folder(tmp_path / "fitted")
    assert fitted.states is not None and fitted.model.has_state_head
    after = fitted.model.trainable_state_dict()
    assert {k for k in after if not k.startswith("state_head.")} - {"state_embeddings"} == set(before)
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)
    assert fitted.model.config.decoding.method in ("viterbi", "grounded")
    assert "val horizon accuracy" in out
    # the horizon choice alone is refitted, on other windows, the head kept as it is
    assert planllm(["states", "--model", str(tmp_path / "fitted"), "--out", str(tmp_path / "refit"), "--horizon-only",
                    "--horizon-samples", "8"]) == 0
    assert "val horizon accuracy" in capsys.readouterr().out
    refit = load_model_folder(tmp_path / "refit")
    assert refit.model.config.decoding.horizon != fitted.model.config.decoding.horizon
    assert all(np.array_equal(v.numpy(), fitted.model.trainable_state_dict()[k].numpy())
               for k, v in refit.model.trainable_state_dict().items())
    assert planllm(["states", "--model", str(tmp_path / "absent"), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_node_publishes_the_states_of_its_plan(exported, ros_env, tmp_path):
    import rclpy

    rclpy.init()
    try:
        rng = np.random.default_rng(0)
        start, goal = (rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(2))
        with planner_node(ros_env, tmp_path, exported) as (_, client):
            client.send_goal(goal, frame_id="goal")
            assert sending(lambda: client.send_frame(start, frame_id="cam"), lambda: bool(client.snapshot()["plans"]))
            plan = client.snapshot()["plans"][0]
            sentences = set(StateModel.load(exported / STATE_MODEL_FILE).sentences)
            for key in ("start_state", "goal_state"):
                assert isinstance(plan[key], list)
                assert all(r["sentence"] in sentences and 0.5 <= r["probability"] <= 1.0 for r in plan[key])
    finally:
        rclpy.shutdown()


@pytest.mark.real_data
def test_crosstask_descriptions_train_a_state_head(shared_data, tmp_path, monkeypatch):
    """Simulated CrossTask features with the real descriptions: the state model is made of their
    before/after sentences and the head's loss is part of training."""
    features = tmp_path / "features"
    assert planllm(["data", "simulate", "--dataset", "crosstask", "--root", str(shared_data / "crosstask"),
                    "--out", str(features), "--dim", "16"]) == 0
    monkeypatch.setenv("CROSSTASK_ROOT", str(shared_data / "crosstask"))
    monkeypatch.setenv("CROSSTASK_FEATURES", str(features))
    config = load_config("crosstask-tiny", ["model.visual.feature_dim=16", "train.stage1.epochs=1",
                                            "train.stage2.epochs=1", "data.train_samples=64", "train.progress=false",
                                            "llm.max_new_tokens=6", *STATES])
    model_dir = train(config, tmp_path / "run")
    states = StateModel.load(model_dir / STATE_MODEL_FILE)
    descriptors = json.loads((shared_data / "crosstask" / "descriptors_crosstask.json").read_text())
    written = {normalize(s) for task in descriptors.values() for step in task.values()
               for s in step["before"] + step["after"]}
    assert states.num_propositions > 50 and {normalize(s) for s in states.sentences} <= written
    assert any(states.delete)  # some step turns a described state into another
    logged = {line.split(",")[4] for line in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]}
    assert "loss_state" in logged
    # CrossTask-format data plans with the number of steps untold too
    assert planllm(["bench", "horizons", "--quick", "--model", str(model_dir), "--out", str(tmp_path / "bench")]) == 0
    report = (tmp_path / "bench" / "horizons-quick.md").read_text()
    assert "crosstask: horizon accuracy" in report and "true states" not in report
