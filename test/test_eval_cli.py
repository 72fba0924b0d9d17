"""`planllm eval` on a trained tiny run: closed-set and open-vocabulary tables, JSON, the
paraphrase split, predictions that cannot depend on the ground truth, and clear errors."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from planllm_ros.cli import main
from training.config import load_config
from training.evaluate import format_table, load_for_eval, predict_split
from training.splits import load_split
from training.trainer import train

SETS = ["data.train_samples=32", "data.eval_samples=12", "train.batch_size=16", "train.stage1.epochs=1",
        "train.stage2.epochs=1", "train.progress=false", "llm.max_new_tokens=6"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    train(load_config("tabletop-tiny", SETS), out)
    return out


@pytest.mark.slow
def test_training_chose_the_llm_weight_on_val_and_pretrained_the_builtin_llm(run_dir):
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["decoding"]["llm_weight"] in load_config("tabletop-tiny").train.llm_weights
    assert config["llm"]["builtin"]["pretrain_steps"] > 0
    logged = (run_dir / "log.csv").read_text()
    assert all(f"sr_llm_weight_{w:g}" in logged for w in (0.0, 0.25, 0.5, 1.0, 2.0))


@pytest.mark.slow
def test_table_and_json(run_dir, capsys):
    assert main(["eval", "--checkpoint", str(run_dir), "--split", "test"]) == 0
    table = capsys.readouterr().out
    assert "tabletop / test  T=3  n=12  decode=viterbi" in table
    for row in ("closed set", "open vocabulary", "SR", "mAcc", "mIoU (peer, bitwise)", "mIoU (set)"):
        assert row in table
    assert main(["eval", "--checkpoint", str(run_dir / "model"), "--split", "paraphrase", "--decode", "argmax", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "paraphrase" and result["decode"] == "argmax"
    for family in ("closed", "open"):
        assert all(0.0 <= result[family][m] <= 100.0 for m in ("sr", "macc", "miou", "miou_set"))


@pytest.mark.slow
def test_predictions_do_not_depend_on_the_ground_truth(run_dir):
    loaded = load_for_eval(run_dir)
    dataset = load_split(loaded.config.data, "test", loaded.config.visual())
    rng = np.random.default_rng(0)
    shuffled = dataclasses.replace(dataset, samples=[
        dataclasses.replace(s, steps=rng.permutation(loaded.model.config.num_steps)[:3], task=-1) for s in dataset.samples])
    ids, captions = predict_split(loaded.model, dataset, loaded.transition, "viterbi", batch_size=5)
    ids2, captions2 = predict_split(loaded.model, shuffled, loaded.transition, "viterbi", batch_size=5)
    assert np.array_equal(ids, ids2) and captions == captions2


def test_table_marks_missing_families():
    result = {"dataset": "d", "split": "s", "horizon": 3, "samples": 2, "decode": "argmax",
              "closed": {"sr": 50.0, "macc": 62.5, "miou": 70.0, "miou_set": 55.0}, "open": None}
    lines = format_table(result).splitlines()
    assert lines[2].split()[-4:] == ["50.00", "62.50", "70.00", "55.00"]
    assert lines[3].split()[-4:] == ["n/a"] * 4


def test_bad_checkpoint_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path)]) == 2
    assert "train_config.json is missing" in capsys.readouterr().err
