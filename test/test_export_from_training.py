"""`planllm export` from what `planllm train` writes: a run directory (its model/ folder). The
card carries the step descriptions, parity is also checked on real training images, and
`planllm eval --card` adds the metrics reached on a split. A directory holding only a resumable
training checkpoint is refused with what to do."""
from __future__ import annotations

import json

import numpy as np
import pytest

from planllm_ros.cli import main as planllm
from planllm_ros.export.exporter import ExportError, export_model
from planllm_ros.export.model_card import describe_training
from planllm_ros.runtime.planner import Planner
from training.evaluation.evaluate import load_for_eval, predictions
from training.evaluation.metrics import procedure_metrics
from training.train.logging_utils import REPO, git_output
from training.train.splits import load_split

pytestmark = pytest.mark.slow  # a (very short) real training run

SETS = ["train.stage1.epochs=1", "train.stage2.epochs=1", "data.train_samples=48", "data.eval_samples=16"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from training.train.config import load_config
    from training.train.trainer import train

    out = tmp_path_factory.mktemp("run") / "tabletop"
    train(load_config("tabletop-tiny", [*SETS, f"data.cache_dir={out.parent / 'cache'}"]), out, device="cpu")
    return out


def test_export_a_run_then_record_its_metrics(run_dir, tmp_path):
    samples = tmp_path / "samples.npz"
    assert planllm(["data", "samples", "--config", "tabletop-tiny", *sum((["--set", s] for s in SETS), []),
                    "--count", "4", "--out", str(samples)]) == 0
    card = export_model(run_dir, tmp_path / "model", samples=samples)
    assert card["source"]["path"] == str(run_dir / "model")
    assert all(d.strip() for d in card["descriptions"]) and len(card["descriptions"]) == len(card["labels"])
    assert max(card["parity_max_abs_diff"].values()) <= 1e-4 and "backbone.tokens" in card["parity_max_abs_diff"]
    assert (tmp_path / "model" / "train_config.json").is_file()
    feats = np.random.default_rng(0).random((2, 196, 96)).astype(np.float32)  # the preset's block-13 token maps
    plans = [Planner.from_dir(tmp_path / "model", backend=b).plan(feats[0], feats[1]) for b in ("torch", "onnxruntime")]
    assert plans[0].step_ids == plans[1].step_ids

    # the card names the code that trained the weights: this checkout's commit
    commit = (git_output(REPO, "rev-parse", "HEAD") or "").strip()
    assert card["training"]["commit"] == commit and card["training"]["code_version"].startswith(commit + "+")
    assert f"- trained at commit: {describe_training(card['training'])}" in (tmp_path / "model" / "MODEL_CARD.md").read_text()

    assert planllm(["eval", "--checkpoint", str(tmp_path / "model"), "--split", "test", "--card"]) == 0
    metrics = json.loads((tmp_path / "model" / "model_card.json").read_text())["metrics"]["test"]
    assert metrics["samples"] == 16 and metrics["backend"] == "torch"
    loaded = load_for_eval(tmp_path / "model")  # the metrics recorded are the exported model's on that split
    test = load_split(loaded.config.data, "test", loaded.config.visual())
    gt = np.stack(test.sequences())
    predicted = predictions(loaded, test)
    assert metrics["closed"] == pytest.approx(procedure_metrics(predicted["closed"], gt))
    assert metrics["open"] == pytest.approx(procedure_metrics(predicted["open"], gt))
    assert f"| test closed sr | {metrics['closed']['sr']:.2f} |" in (tmp_path / "model" / "MODEL_CARD.md").read_text()


def test_a_checkpoint_without_a_model_folder_is_refused_with_what_to_do(run_dir, tmp_path):
    with pytest.raises(ExportError, match="planllm train --resume"):
        export_model(run_dir / "checkpoint", tmp_path / "out")
