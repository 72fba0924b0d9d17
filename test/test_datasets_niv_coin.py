"""NIV and COIN on hand-made files: their id conventions (NIV 0-based, COIN 1-based strings),
int() truncation of times, COIN's missing train list, and errors naming file and key path."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from training.datasets.base import DatasetError
from training.datasets.benchmarks import load_benchmark

NIV_ACTIONS = {
    "making coffee": {"task_id": 1, "actions": {"fill water": 2, "add coffee": 3}},
    "jack up car": {"task_id": 0, "actions": {"brake on": 0, "jack up": 1}},
}
NIV_TRAIN = {
    "coffee_0001": {"task": "making coffee", "task_id": 1, "steps": [
        {"action": "fill water", "action_id": 2, "start": 1.9, "end": 3.99},
        {"action": "add coffee", "action_id": 3, "start": 4.5, "end": 6.7},
        {"action": "fill water", "action_id": 2, "start": 7.2, "end": 8.1}]},
}
COIN_VALID = [
    {"vidA": {"recipe_type": 1, "class": "MakeTea", "annotation": [
        {"id": "3", "segment": [1.0, 2.9], "label": "boil water"},
        {"id": "4", "segment": [3.5, 5.99], "label": "add tea"}]}},
    {"vidB": {"recipe_type": 0, "class": "FixBike", "annotation": [
        {"id": "1", "segment": [0.0, 1.0], "label": "remove wheel"}]}},
]


def ramp(length: int) -> np.ndarray:
    return np.arange(length, dtype=np.float32)[:, None].repeat(3, axis=1)


def make_niv(tmp_path: Path) -> tuple[Path, Path]:
    root, features = tmp_path / "niv", tmp_path / "features"
    root.mkdir()
    features.mkdir()
    (root / "niv_action_idx.json").write_text(json.dumps(NIV_ACTIONS))
    (root / "niv_train.json").write_text(json.dumps(NIV_TRAIN))
    (root / "niv_valid.json").write_text(json.dumps({}))
    np.savez(features / "coffee_0001.npz", frames_features=ramp(9))
    return root, features


def make_coin(tmp_path: Path) -> tuple[Path, Path]:
    root, features = tmp_path / "coin", tmp_path / "features"
    root.mkdir()
    features.mkdir()
    (root / "coin_valid.json").write_text(json.dumps(COIN_VALID))
    np.savez(features / "vidA.npz", frames_features=ramp(8))
    np.save(features / "vidB.npy", ramp(3))
    return root, features


def test_niv_ids_and_truncated_times(tmp_path):
    root, features = make_niv(tmp_path)
    train = load_benchmark("niv", root, features, "train", 2)
    assert train.vocab.labels == ("brake on", "jack up", "fill water", "add coffee")
    assert train.vocab.tasks == ("jack up car", "making coffee")
    assert train.vocab.task_steps == {1: (2, 3), 0: (0, 1)}
    assert [s.steps.tolist() for s in train] == [[2, 3], [3, 2]] and train[0].task == 1
    # int(): start 1.9 -> 1 (frames 0..2), end 6.7 -> 6 (frames 5..7); start 4.5 -> 4, end 8.1 -> 8
    np.testing.assert_allclose(train[0].start, [1, 1, 1])
    np.testing.assert_allclose(train[0].goal, [6, 6, 6])
    np.testing.assert_allclose(train[1].start, [4, 4, 4])
    np.testing.assert_allclose(train[1].goal, [7.5, 7.5, 7.5])  # the video has 9 rows: frames 7, 8
    assert len(load_benchmark("niv", root, features, "test", 2)) == 0


def test_coin_ids_labels_tasks_and_test_only(tmp_path, caplog):
    root, features = make_coin(tmp_path)
    with caplog.at_level(logging.WARNING):
        test = load_benchmark("coin", root, features, "test", 2)
    assert test.vocab.labels == ("remove wheel", "step 2", "boil water", "add tea")  # id 2 never annotated
    assert "1 step ids never appear" in caplog.text
    assert test.vocab.tasks == ("Fix Bike", "Make Tea") and test.vocab.task_steps == {0: (0,), 1: (2, 3)}
    assert [(s.video, s.steps.tolist(), s.task) for s in test] == [("vidA", [2, 3], 1)]
    np.testing.assert_allclose(test[0].start, [1, 1, 1])  # int(1.0): frames 0..2
    np.testing.assert_allclose(test[0].goal, [5, 5, 5])  # int(5.99) = 5: frames 4..6
    with pytest.raises(DatasetError, match=r"coin_train\.json: file not found .* evaluated but not trained"):
        load_benchmark("coin", root, features, "train", 2)


@pytest.mark.parametrize("file, content, message", [
    ("niv_action_idx.json", {**NIV_ACTIONS, "making coffee": {"task_id": 1, "actions": {"fill water": 7}}},
     r"niv_action_idx\.json: the action ids must be 0\.\.2 with no gaps"),
    ("niv_action_idx.json", {"jack up car": {"actions": {}}},
     r"niv_action_idx\.json: \[\"jack up car\"\] has no 'task_id'"),
    ("niv_train.json", {"v": {"task_id": 1, "steps": [{"action_id": 9, "start": 0, "end": 1}]}},
     r"niv_train\.json: \[\"v\"\]\[\"steps\"\]\[0\]\[\"action_id\"\] is 9, outside 0\.\.3"),
    ("niv_train.json", {"v": {"task_id": 1, "steps": [{"action_id": 2, "start": "0", "end": 1}]}},
     r"\[\"v\"\]\[\"steps\"\]\[0\]\[\"start\"\] must be a number, got str"),
    ("niv_train.json", {"v": {"task_id": 5, "steps": []}}, r"\[\"v\"\]\[\"task_id\"\] is 5, outside 0\.\.1"),
    ("niv_train.json", [], r"niv_train\.json: <root> must be an object, got list"),
])
def test_niv_errors(tmp_path, file, content, message):
    root, features = make_niv(tmp_path)
    (root / file).write_text(json.dumps(content))
    with pytest.raises(DatasetError, match=message):
        load_benchmark("niv", root, features, "train", 2)


@pytest.mark.parametrize("content, message", [
    ([{"a": {}, "b": {}}], r"coin_valid\.json: \[0\] must hold exactly one video, got 2 keys"),
    ([{"v": {"recipe_type": 0, "class": "X", "annotation": [{"id": "abc", "segment": [0, 1], "label": "x"}]}}],
     r"\[0\]\[\"v\"\]\[\"annotation\"\]\[0\]\[\"id\"\] must be a 1-based step id, got 'abc'"),
    ([{"v": {"recipe_type": 0, "class": "X", "annotation": [{"id": "1", "segment": [0], "label": "x"}]}}],
     r"\[\"segment\"\] must be \[start, end\]"),
    ([{"v": {"recipe_type": 0, "class": "X", "annotation": [{"id": "1", "segment": [0, 1], "label": "x"},
                                                            {"id": "1", "segment": [1, 2], "label": "y"}]}}],
     r"coin_valid\.json: step id 1 is labelled both 'x' and 'y'"),
    ([{"v": {"class": "X", "annotation": []}}], r"\[0\]\[\"v\"\] has no 'recipe_type' field"),
])
def test_coin_errors(tmp_path, content, message):
    root, features = make_coin(tmp_path)
    (root / "coin_valid.json").write_text(json.dumps(content))
    with pytest.raises(DatasetError, match=message):
        load_benchmark("coin", root, features, "test", 2)


def test_coin_without_any_list(tmp_path):
    root, features = make_coin(tmp_path)
    (root / "coin_valid.json").unlink()
    with pytest.raises(DatasetError, match=r"neither coin_train\.json nor coin_valid\.json found"):
        load_benchmark("coin", root, features, "test", 2)
