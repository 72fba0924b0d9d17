"""The loaders on the real annotation files in ../shared/data (skipped where absent): vocabulary
sizes, the peers' CrossTask ids, and one sample per window with features that cover everything."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.datasets.base import DatasetError
from training.datasets.base import transition_matrix
from training.datasets.benchmarks import load_benchmark, read_benchmark

pytestmark = pytest.mark.real_data


def write_covering_features(videos, features: Path) -> None:
    """Zeros, one row per second up to just past each video's last annotated end."""
    features.mkdir(exist_ok=True)
    for video in videos:
        length = max(s.end for s in video.segments) + 2
        np.save(features / f"{video.feature_stem}.npy", np.zeros((length, 1), np.float32))


def test_crosstask_vocabulary_uses_the_peers_ids(shared_data):
    vocab, _ = read_benchmark("crosstask", shared_data / "crosstask", "test")
    indices = json.loads((shared_data / "crosstask" / "crosstask_indices.json").read_text())
    assert (vocab.num_steps, vocab.num_tasks) == (133, 18)
    for key, one_based in indices["action_idx"].items():
        task, step = key.split("_", 1)
        assert vocab.labels[one_based - 1] == step
        assert one_based - 1 in vocab.task_steps[indices["task_idx"][task]]
    assert vocab.tasks == tuple(sorted(indices["task_idx"], key=indices["task_idx"].get))
    assert sorted(i for steps in vocab.task_steps.values() for i in steps) == list(range(133))


@pytest.mark.parametrize("name, split, steps, tasks, split_file", [
    ("niv", "train", 48, 5, "niv_train.json"),
    ("niv", "test", 48, 5, "niv_valid.json"),
    ("coin", "test", 778, 180, "coin_valid.json"),
])
def test_every_window_is_a_sample(shared_data, tmp_path, name, split, steps, tasks, split_file):
    root = shared_data / name
    vocab, videos = read_benchmark(name, root, split)
    assert (vocab.num_steps, vocab.num_tasks) == (steps, tasks)
    write_covering_features(videos, tmp_path / "features")
    raw = json.loads((root / split_file).read_text())
    raw_steps = ([v["steps"] for v in raw.values()] if name == "niv"
                 else [next(iter(e.values()))["annotation"] for e in raw])
    for horizon in (3, 4):
        dataset = load_benchmark(name, root, tmp_path / "features", split, horizon)
        assert len(dataset) == sum(max(0, len(s) - horizon + 1) for s in raw_steps)
        assert len(dataset.descriptions) == steps
        assert all(0 <= i < steps for s in dataset for i in s.steps) and {s.task for s in dataset} <= set(range(tasks))
    first = next(s for s in raw_steps if len(s) >= 4)[:4]  # the first T=4 window
    ids = [a["action_id"] for a in first] if name == "niv" else [int(a["id"]) - 1 for a in first]
    assert dataset[0].steps.tolist() == ids


def test_real_transition_matrices(shared_data):
    """What the trainer builds from a split's windows: finite rows that sum to one."""
    for name, steps in (("crosstask", 133), ("niv", 48)):
        vocab, videos = read_benchmark(name, shared_data / name, "train")
        matrix = transition_matrix([[s.step for s in v.segments] for v in videos], vocab.num_steps)
        assert matrix.shape == (steps, steps) and np.isfinite(matrix).all()
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    with pytest.raises(DatasetError, match=r"coin_train\.json: file not found"):
        read_benchmark("coin", shared_data / "coin", "train")


def test_crosstask_times_are_rounded(shared_data):
    _, videos = read_benchmark("crosstask", shared_data / "crosstask", "train")
    video = videos[0]
    rows = (shared_data / "crosstask" / "crosstask_release" / "annotations" / f"{video.feature_stem}.csv").read_text()
    first = rows.splitlines()[0].split(",")
    assert (video.segments[0].start, video.segments[0].end) == (round(float(first[1])), round(float(first[2])))
