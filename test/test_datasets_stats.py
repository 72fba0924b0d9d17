"""`planllm data stats` through the real CLI: the CrossTask window counts of the spec on simulated
features covering every annotation, missing features, and COIN's absent train list."""
from __future__ import annotations

import json

import numpy as np
import pytest

from planllm_ros.cli import main
from training.datasets.benchmarks import read_benchmark


def stats(capsys, *args: str) -> dict:
    assert main(["data", "stats", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.real_data
def test_crosstask_window_counts(shared_data, tmp_path, capsys):
    root, features = shared_data / "crosstask", tmp_path / "features"
    assert main(["data", "simulate", "--dataset", "crosstask", "--root", str(root), "--out", str(features),
                 "--dim", "2"]) == 0
    capsys.readouterr()
    common = ("--dataset", "crosstask", "--root", str(root), "--features", str(features))
    result = stats(capsys, *common, "--horizon", "3")
    assert (result["num_steps"], result["num_tasks"], result["simulated_features"]) == (133, 18, True)
    train, test = result["splits"]["train"], result["splits"]["test"]
    assert (train["samples"], test["samples"]) == (12293, 2030)
    assert (train["videos"], test["videos"]) == (2200, 340)
    assert (train["dropped_windows"], train["feature_dim"], train["steps"], train["tasks"]) == (0, 2, 133, 18)

    assert main(["data", "stats", *common, "--horizon", "4"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("crosstask  T=4  vocabulary: 133 steps, 18 tasks  (SIMULATED features")
    assert table[2].split()[:3] == ["train", "10233", "2200"] and table[3].split()[:3] == ["test", "1716", "340"]

    _, videos = read_benchmark("crosstask", root, "train")
    lost = videos[0]
    (features / f"{lost.feature_stem}.npz").unlink()
    assert main(["data", "stats", *common, "--horizon", "3"]) == 2
    assert f"{lost.feature_stem}.npz (or .npy): feature file not found" in capsys.readouterr().err
    result = stats(capsys, *common, "--horizon", "3", "--skip-missing-features")
    assert result["splits"]["train"]["videos_without_features"] == 1
    assert result["splits"]["train"]["samples"] == 12293 - max(0, len(lost.segments) - 2)


def test_coin_train_list_absent(tmp_path, capsys):
    root, features = tmp_path / "coin", tmp_path / "features"
    root.mkdir()
    features.mkdir()
    annotation = [{"id": str(i), "segment": [i, i + 0.5], "label": f"step {i}"} for i in (1, 2, 3)]
    (root / "coin_valid.json").write_text(json.dumps([{"vid": {"recipe_type": 0, "class": "Demo",
                                                               "annotation": annotation}}]))
    (features / "vid.npy").write_bytes(b"")
    assert main(["data", "stats", "--dataset", "coin", "--root", str(root), "--features", str(features),
                 "--horizon", "3"]) == 2
    assert "vid.npy: not a .npy or .npz file" in capsys.readouterr().err
    np.save(features / "vid.npy", np.ones((6, 3), np.float32))
    result = stats(capsys, "--dataset", "coin", "--root", str(root), "--features", str(features), "--horizon", "3")
    assert result["splits"]["train"] == {"absent": str(root / "coin_train.json")}
    assert result["splits"]["test"]["samples"] == 1 and result["splits"]["test"]["steps"] == 3
    assert result["simulated_features"] is False
