"""CrossTask loading on a hand-made dataset: windowing, exact state features, rounding, step ids,
feature encodings, the transition matrix, and an error naming the file for each bad input."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from training.datasets.base import DatasetError
from training.datasets.benchmarks import load_benchmark, load_benchmark_with_report

TASKS = """111
Make Tea
http://example.org/tea
3
boil water,add tea,pour water

222
Fix Bike
http://example.org/bike
2
remove wheel,patch tube

"""
# peer-style ids: Fix Bike's steps first, 1-based
INDICES = {
    "action_idx": {"Fix Bike_remove wheel": 1, "Fix Bike_patch tube": 2, "Make Tea_boil water": 3,
                   "Make Tea_add tea": 4, "Make Tea_pour water": 5},
    "task_idx": {"Fix Bike": 0, "Make Tea": 1},
    "rd_action_idx": {},
}
ANNOTATIONS = {
    # rounded half-to-even: 2.5 -> 2, 4.4 -> 4, 5.5 -> 6, 9.6 -> 10, 10.2 -> 10
    "111_v1": "1,2.5,4.4\n2,5.5,7.0\n3,8.0,9.6\n1,10.2,11.0\n",
    "222_v2": "2,0.4,3\n1,3,5\n",
    # the second step ends at 40, past the 20 feature rows
    "111_v3": "1,1,2\n2,3,40\n3,5,6\n1,7,8\n",
}
LENGTHS = {"111_v1": 12, "222_v2": 6, "111_v3": 20}


def ramp(length: int) -> np.ndarray:
    """Row i = [i, 10 i]: the mean of a frame range is its mean index, so expected values are exact."""
    i = np.arange(length, dtype=np.float32)
    return np.stack([i, 10 * i], axis=1)


def make_crosstask(tmp_path: Path, indices: bool = True) -> tuple[Path, Path]:
    root, features = tmp_path / "crosstask", tmp_path / "features"
    (root / "crosstask_release" / "annotations").mkdir(parents=True)
    features.mkdir()
    (root / "crosstask_release" / "tasks_primary.txt").write_text(TASKS)
    if indices:
        (root / "crosstask_indices.json").write_text(json.dumps(INDICES))
    for stem, rows in ANNOTATIONS.items():
        (root / "crosstask_release" / "annotations" / f"{stem}.csv").write_text(rows)
    split = {"train": [("111", "v1"), ("222", "v2")], "test": [("111", "v3")]}
    for name, flag in (("train", False), ("test", True)):
        entries = [{"id": {"vid": vid, "task": task, "feature": f"/elsewhere/{vid}.npy"}} for task, vid in split[name]]
        (root / f"cross_task_data_{flag}.json").write_text(json.dumps(entries))
    np.savez(features / "111_v1.npz", frames_features=ramp(12))
    np.save(features / "222_v2.npy", ramp(6))  # plain 2-D .npy
    np.savez(features / "111_v3.npz", frames_features=ramp(20))
    return root, features


def test_windows_and_exact_state_features(tmp_path):
    root, features = make_crosstask(tmp_path)
    train = load_benchmark("crosstask", root, features, "train", 3)
    assert [s.video for s in train] == ["v1", "v1"]
    assert [s.steps.tolist() for s in train] == [[2, 3, 4], [3, 4, 2]]
    # the video's steps around each window (training labels read them)
    assert [(s.before.tolist(), s.after.tolist()) for s in train] == [([], [2]), ([2], [])]
    assert [train.step_labels(s) for s in train] == [["boil water", "add tea", "pour water"],
                                                     ["add tea", "pour water", "boil water"]]
    assert all(s.task == 1 for s in train) and train.vocab.tasks == ("Fix Bike", "Make Tea")
    # start of step 1 at 2 s: frames 1, 2, 3; end of step 3 at 10 s: frames 9, 10, 11
    np.testing.assert_allclose(train[0].start, [2, 20])
    np.testing.assert_allclose(train[0].goal, [10, 100])
    # start 6 s: frames 5..7; end 11 s: frames 10, 11 (the video has 12 rows: clipped)
    np.testing.assert_allclose(train[1].start, [6, 60])
    np.testing.assert_allclose(train[1].goal, [10.5, 105])
    assert train[0].start.dtype == np.float32 and train.horizon == 3 and train.split == "train"


def test_horizon_two_clips_at_video_start_and_reads_plain_npy(tmp_path):
    root, features = make_crosstask(tmp_path)
    train = load_benchmark("crosstask", root, features, "train", 2)
    assert [(s.video, s.steps.tolist()) for s in train] == [
        ("v1", [2, 3]), ("v1", [3, 4]), ("v1", [4, 2]), ("v2", [1, 0])]
    bike = train[3]
    assert bike.task == 0
    np.testing.assert_allclose(bike.start, [0.5, 5])  # starts at 0 s: frames 0, 1
    np.testing.assert_allclose(bike.goal, [4.5, 45])  # ends at 5 s of 6 rows: frames 4, 5


def test_windows_with_any_step_outside_the_features_are_dropped(tmp_path):
    root, features = make_crosstask(tmp_path)
    # T=3: both windows hold the step ending at 40 s (in one it is only the middle step)
    test3, report = load_benchmark_with_report("crosstask", root, features, "test", 3)
    assert len(test3) == 0 and (report.windows, report.dropped) == (2, 2)
    test2, report = load_benchmark_with_report("crosstask", root, features, "test", 2)
    assert [s.steps.tolist() for s in test2] == [[4, 2]] and report.dropped == 2
    np.testing.assert_allclose(test2[0].start, [5, 50])
    np.testing.assert_allclose(test2[0].goal, [8, 80])


def test_without_indices_file_ids_follow_tasks_primary(tmp_path, caplog):
    root, features = make_crosstask(tmp_path, indices=False)
    with caplog.at_level(logging.WARNING):
        train = load_benchmark("crosstask", root, features, "train", 3)
    assert "crosstask_indices.json not found" in caplog.text
    assert train.vocab.labels == ("boil water", "add tea", "pour water", "remove wheel", "patch tube")
    assert train[0].steps.tolist() == [0, 1, 2] and train[0].task == 0


def test_descriptions_from_root_with_label_fallback(tmp_path, caplog):
    root, features = make_crosstask(tmp_path)
    schema = {"Make Tea": {"boil water": {"description": "Boil water in a kettle", "before": ["Cold."],
                                          "after": ["Hot."]}}}
    (root / "descriptors_crosstask.json").write_text(json.dumps(schema))
    with caplog.at_level(logging.WARNING):
        train = load_benchmark("crosstask", root, features, "train", 3)
    assert train.descriptions[2].text() == "Boil water in a kettle Cold. Hot."
    assert train.descriptions[0].description == "remove wheel"  # not in the file: its label
    assert "no description for 4 of 5 steps" in caplog.text


def test_missing_features_fail_or_are_skipped(tmp_path):
    root, features = make_crosstask(tmp_path)
    (features / "222_v2.npy").unlink()
    with pytest.raises(DatasetError, match=r"222_v2\.npz \(or \.npy\): feature file not found"):
        load_benchmark("crosstask", root, features, "train", 2)
    train, report = load_benchmark_with_report("crosstask", root, features, "train", 2, skip_missing_features=True)
    assert len(train) == 3 and report.videos_without_features == 1


def _write(path: Path, content) -> None:
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)


@pytest.mark.parametrize("relative, content, message", [
    ("crosstask_release/tasks_primary.txt", TASKS.replace("\n3\n", "\n4\n"),
     r"tasks_primary\.txt: line 4: .*'4' steps"),
    ("crosstask_release/annotations/111_v1.csv", "1,2.5\n", r"111_v1\.csv: line 1: expected 'step_no,start_s,end_s'"),
    ("crosstask_release/annotations/111_v1.csv", "1,2,3\n7,4,5\n", r"111_v1\.csv: line 2: step 7 is outside 1\.\.3"),
    ("crosstask_release/annotations/111_v1.csv", "1,nan,3\n", r"111_v1\.csv: line 1"),
    ("cross_task_data_False.json", '[{"id": {"vid": "v1"', r"cross_task_data_False\.json: not valid JSON"),
    ("cross_task_data_False.json", '[{"id": {"task": "111"}}]', r"False\.json: \[0\]\[\"id\"\] has no 'vid' field"),
    ("cross_task_data_False.json", '[{"id": {"vid": "v1", "task": "999"}}]', r"\[0\]\[\"id\"\]\[\"task\"\] is '999'"),
    ("cross_task_data_False.json", '{"id": 1}', r"False\.json: <root> must be a list, got dict"),
    ("crosstask_indices.json", json.dumps({"action_idx": {}, "task_idx": INDICES["task_idx"]}),
     r"indices\.json: \[\"action_idx\"\] has no entry 'Make Tea_boil water'"),
    ("crosstask_indices.json",
     json.dumps({**INDICES, "action_idx": {**INDICES["action_idx"], "Fix Bike_patch tube": 1}}),
     r"indices\.json: \[\"action_idx\"\] must number the 5 steps .* 1\.\.5, each once"),
    ("crosstask_indices.json", json.dumps({**INDICES, "task_idx": {"Fix Bike": "0", "Make Tea": 1}}),
     r"\[\"task_idx\"\]\[\"Fix Bike\"\] must be an integer, got str"),
])
def test_malformed_annotation_files_name_file_and_fault(tmp_path, relative, content, message):
    root, features = make_crosstask(tmp_path)
    _write(root / relative, content)
    with pytest.raises(DatasetError, match=message):
        load_benchmark("crosstask", root, features, "train", 3)


@pytest.mark.parametrize("removed, message", [
    ("crosstask_release/tasks_primary.txt", r"tasks_primary\.txt: file not found"),
    ("crosstask_release/annotations/222_v2.csv", r"222_v2\.csv: annotation file not found"),
    ("cross_task_data_False.json", r"cross_task_data_False\.json: file not found"),
])
def test_missing_annotation_files_are_named(tmp_path, removed, message):
    root, features = make_crosstask(tmp_path)
    (root / removed).unlink()
    with pytest.raises(DatasetError, match=message):
        load_benchmark("crosstask", root, features, "train", 3)


@pytest.mark.parametrize("name, content, message", [
    ("111_v1.npz", lambda p: np.savez(p, other=ramp(12)),
     r"111_v1\.npz: no 'frames_features' array \(has \['other'\]\)"),
    ("111_v1.npz", lambda p: np.savez(p, frames_features=np.arange(12.0)), r"111_v1\.npz: expected a non-empty"),
    ("111_v1.npz", lambda p: p.write_bytes(b"not a zip"), r"111_v1\.npz: not a \.npy or \.npz file"),
    ("111_v1.npz", lambda p: p.write_bytes(b"PK\x03\x04truncated"), r"111_v1\.npz: not a readable numpy file"),
    ("222_v2.npy", lambda p: p.write_bytes(np.lib.format.MAGIC_PREFIX + b"\x01\x00"), r"222_v2\.npy: not a readable"),
    ("111_v1.npz", lambda p: np.savez(p, frames_features=np.array([["a", "b"]])), r"111_v1\.npz: expected real"),
    ("222_v2.npy", lambda p: np.save(p, ramp(6)[:, :1]), r"222_v2\.npy: 1-d features, but earlier videos have 2-d"),
    ("222_v2.npy", lambda p: np.save(p, np.array({"frames_features": ramp(6)}), allow_pickle=True),
     r"222_v2\.npy: holds pickled Python objects .* \.npz with key 'frames_features'"),
])
def test_malformed_feature_files_name_file_and_fault(tmp_path, name, content, message):
    root, features = make_crosstask(tmp_path)
    content(features / name)
    with pytest.raises(DatasetError, match=message):
        load_benchmark("crosstask", root, features, "train", 2)


def test_pickle_payload_is_never_executed(tmp_path):
    """A peer-style pickled .npy is refused before anything in it runs."""
    root, features = make_crosstask(tmp_path)
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    array = np.empty(1, dtype=object)
    array[0] = Payload()
    with (features / "222_v2.npy").open("wb") as f:
        np.lib.format.write_array(f, array, allow_pickle=True)
    with pytest.raises(DatasetError, match="pickled"):
        load_benchmark("crosstask", root, features, "train", 2)
    assert not marker.exists()


def test_bad_arguments(tmp_path):
    root, features = make_crosstask(tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark 'howto'"):
        load_benchmark("howto", root, features, "train", 3)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_benchmark("crosstask", root, features, "val", 3)
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        load_benchmark("crosstask", root, features, "train", 0)
    with pytest.raises(DatasetError, match="nowhere: features directory not found"):
        load_benchmark("crosstask", root, tmp_path / "nowhere", "train", 3)
