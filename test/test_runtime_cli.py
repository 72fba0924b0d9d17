"""`planllm plan START GOAL`: text and --json output, --labels, --horizon, --backend, and
clear exit-code-2 errors for bad files and arguments."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from planllm_ros.cli import main as planllm
from planllm_ros.export.exporter import export_model
from planllm_ros.model.config import OpenVocabConfig
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
    assert set(result["open_vocab_labels"]) <= {"grab a mug", "shut the drawer", "clean the counter", None}
    assert result["open_vocab_unknown"] == [t for t, label in enumerate(result["open_vocab_labels"]) if label is None]
    assert result["open_vocab_method"] == OpenVocabConfig().method
    assert planllm(["plan", str(files / "start.png"), str(files / "goal.png"), "--model", str(files / "exported")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("1. ") and "3. " in text and "[torch]" in text


def test_labels_with_descriptions_from_describe(files, capsys, tmp_path):
    """labels.descriptions.json beside labels.txt (as `planllm describe` writes it) is read; a
    broken one is refused naming it."""
    labels = tmp_path / "labels.txt"
    labels.write_text("grab a mug\nshut the drawer\nclean the counter\n")
    described = {"kitchen": {"grab a mug": {"description": "Take a mug from the shelf.", "before": [],
                                            "after": ["The mug is in the hand."]}}}
    (tmp_path / "labels.descriptions.json").write_text(json.dumps(described))
    argv = ["plan", str(files / "start.npy"), str(files / "goal.png"), "--model", str(files / "exported"),
            "--labels", str(labels)]
    assert planllm(argv) == 0
    assert f"open-vocabulary labels ({OpenVocabConfig().method}): " in capsys.readouterr().out
    (tmp_path / "labels.descriptions.json").write_text('{"kitchen": {"grab a mug": {"before": []}}}')
    assert planllm(argv) == 2
    assert "labels.descriptions.json: 'kitchen' / 'grab a mug': expected an object with a \"description\"" in \
        capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"# only a comment\n\n", "labels.txt: holds no labels"),
    (b"grab a mug\nshut the drawer\n\nGrab  a mug\n", "labels.txt:4: label 'Grab  a mug' is already on line 1"),
    (b"grab a mug\nshut the dr\xe4wer\n", "labels.txt:2: not UTF-8 text (byte 0xe4)"),
])
def test_bad_label_files_are_refused_naming_file_and_line(files, capsys, tmp_path, content, message):
    (tmp_path / "labels.txt").write_bytes(content)
    assert planllm(["plan", str(files / "start.npy"), str(files / "goal.png"), "--model", str(files / "exported"),
                    "--labels", str(tmp_path / "labels.txt")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--horizon", "5"], "plans exactly 3 steps"),
    (["--labels", "missing.txt"], "missing.txt: no such file"),
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
