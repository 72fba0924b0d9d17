"""`planllm plan START GOAL`: text and --json output, --labels, --horizon, --backend, and
clear exit-code-2 errors for bad files and arguments."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from planllm_ros.cli import main as planllm
from planllm_ros.export.exporter import export_model
from runtime_helpers import LABELS, save_tiny_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    export_model(save_tiny_model(root / "model"), root / "exported")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(root / "start.png")
    Image.fromarray(rng.integers(0, 256, (90, 90, 3), dtype=np.uint8)).convert("L").save(root / "goal.png")
    np.save(root / "start.npy", rng.random(1280).astype(np.float32))
    (root / "labels.txt").write_text("grab a mug\n\nshut the drawer\nclean the counter\n")
    return root


def plan_json(capsys, *args) -> dict:
    assert planllm(["plan", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_json_output(files, capsys, backend):
    result = plan_json(capsys, files / "start.png", files / "goal.png", "--model", files / "exported",
                       "--backend", backend)
    assert {"step_ids", "labels", "scores", "captions", "timings_ms"} <= set(result)
    assert len(result["step_ids"]) == 3 and result["labels"] == [LABELS[i] for i in result["step_ids"]]
    assert result["backend"] == backend and result["open_vocab_labels"] is None


def test_labels_file_features_and_text_output(files, capsys):
    result = plan_json(capsys, files / "start.npy", files / "goal.png", "--model", files / "exported",
                       "--labels", files / "labels.txt", "--horizon", "3")
    assert set(result["open_vocab_labels"]) <= {"grab a mug", "shut the drawer", "clean the counter"}
    assert planllm(["plan", str(files / "start.png"), str(files / "goal.png"), "--model", str(files / "exported")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("1. ") and "3. " in text and "[torch]" in text


@pytest.mark.parametrize("args, message", [
    (["--horizon", "5"], "plans exactly 3 steps"),
    (["--labels", "missing.txt"], "no such labels file"),
    (["--model", "nowhere"], "does not exist"),
])
def test_bad_arguments_exit_2_with_a_message(files, capsys, monkeypatch, args, message):
    monkeypatch.chdir(files)
    argv = ["plan", "start.png", "goal.png", *args]
    if "--model" not in args:
        argv += ["--model", "exported"]
    assert planllm(argv) == 2
    assert message in capsys.readouterr().err


def test_unreadable_inputs(files, capsys):
    (files / "broken.png").write_bytes(b"not a png")
    assert planllm(["plan", str(files / "broken.png"), str(files / "goal.png"), "--model", str(files / "exported")]) == 2
    assert "broken.png: not a readable image" in capsys.readouterr().err
    assert planllm(["plan", str(files / "absent.png"), str(files / "goal.png"), "--model", str(files / "exported")]) == 2
    assert "absent.png: no such file" in capsys.readouterr().err
