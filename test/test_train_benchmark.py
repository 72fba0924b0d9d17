"""The real-data path end to end where real features are absent: simulate per-video features
from the real NIV annotations, train the niv-tiny preset on them, evaluate on the test split."""
from __future__ import annotations

import json

import pytest

from planllm_ros.cli import main
from training.train.config import load_config
from training.train.splits import load_split
from training.train.trainer import train

pytestmark = [pytest.mark.real_data, pytest.mark.slow]


def test_simulated_niv_trains_and_evaluates(shared_data, tmp_path, capsys, monkeypatch):
    features = tmp_path / "features"
    assert main(["data", "simulate", "--dataset", "niv", "--root", str(shared_data / "niv"),
                 "--out", str(features), "--dim", "32"]) == 0
    monkeypatch.setenv("NIV_ROOT", str(shared_data / "niv"))
    monkeypatch.setenv("NIV_FEATURES", str(features))
    config = load_config("niv-tiny", ["model.visual.feature_dim=32", "train.stage1.epochs=1", "train.stage2.epochs=1",
                                      "train.progress=false", "llm.max_new_tokens=6"])
    # train_samples takes a seeded subset of the benchmark's train windows; val and test stay whole
    subset = load_config("niv-tiny", ["data.train_samples=40"]).data
    full_train, small_train = load_split(config.data, "train"), load_split(subset, "train")
    assert len(small_train) == 40 < len(full_train)
    assert {(s.video, s.steps.tobytes()) for s in small_train} <= {(s.video, s.steps.tobytes()) for s in full_train}
    assert [s.video for s in load_split(subset, "train")] == [s.video for s in small_train]
    assert len(load_split(subset, "val")) == len(load_split(config.data, "val"))
    model_dir = train(config, tmp_path / "run")
    assert json.loads((model_dir / "config.json").read_text())["visual"]["backbone"] == "s3d"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--split", "test", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["dataset"], result["split"], result["horizon"]) == ("niv", "test", 3)
    assert result["samples"] == 333  # every T=3 window of niv_valid.json (features cover all annotations)
    for family in ("closed", "open"):
        assert set(result[family]) == {"sr", "macc", "miou", "miou_set"}
        assert all(0.0 <= v <= 100.0 for v in result[family].values())
