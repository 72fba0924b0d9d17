"""`planllm data tabletop` through the real dispatcher: a small dataset, its features and a preview."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from planllm_ros.cli import main
from training.tabletop.tasks import NOVEL_TASKS, TASKS


def test_cli_writes_dataset_features_and_preview(tmp_path, capsys):
    out, preview = tmp_path / "ds", tmp_path / "preview.png"
    rc = main(["data", "tabletop", "--out", str(out), "--samples", "3", "--horizon", "4", "--seed", "2",
               "--split", "novel", "--features", "--cache-dir", str(tmp_path / "cache"), "--preview", str(preview)])
    assert rc == 0 and "wrote 3 novel samples" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert index["split"] == "novel" and index["horizon"] == 4 and len(index["samples"]) == 3
    record = index["samples"][0]
    assert len(record["steps"]) == 4 and record["labels"] == [index["labels"][i] for i in record["steps"]]
    assert index["tasks"][record["task"]] in {TASKS[i].name for i in NOVEL_TASKS}
    start = np.asarray(Image.open(out / record["start"]))
    assert start.shape == (224, 224, 3) and start.dtype == np.uint8
    descriptions = json.loads((out / "descriptions.json").read_text())
    assert "make tea" in descriptions
    with np.load(out / "features.npz") as feats:
        assert feats["start"].shape == (3, 196, 96) and feats["goal"].shape == (3, 196, 96)
        assert feats["steps"].tolist() == [r["steps"] for r in index["samples"]]
    sheet = Image.open(preview)
    assert sheet.width >= 2 * 224 and sheet.height >= 224


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match="horizon"):
        main(["data", "tabletop", "--out", str(tmp_path), "--horizon", "9"])
    with pytest.raises(SystemExit, match="--out"):
        main(["data", "tabletop"])
