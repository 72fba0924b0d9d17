"""`planllm eval` on a trained tiny run: closed-set and open-vocabulary tables, JSON, the
paraphrase split, predictions that cannot depend on the ground truth, and clear errors."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from planllm_ros.cli import main
from planllm_ros.model.pipeline import plan_batch
from training.datasets.base import collate, transition_matrix
from training.evaluation.evaluate import (METRIC_TITLES, METRICS, evaluate, format_table, ground_truth_leak,
                                          load_for_eval, predictions)
from training.evaluation.metrics import procedure_metrics
from training.train.config import load_config
from training.train.logging_utils import read_log
from training.train.splits import load_split
from training.train.trainer import train

SETS = ["data.train_samples=32", "data.eval_samples=12", "train.batch_size=16", "train.stage1.epochs=1",
        "train.stage2.epochs=1", "train.progress=false", "llm.max_new_tokens=6"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    train(load_config("tabletop-tiny", SETS), out)
    return out


@pytest.mark.slow
def test_training_chose_the_llm_weight_on_val_and_pretrained_the_builtin_llm(run_dir):
    """The saved weight is the candidate with the best val SR (the smallest on ties), recomputed
    here through evaluation at every candidate weight, and the log reports those very scores."""
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["llm"]["builtin"]["pretrain_steps"] > 0
    candidates = sorted(load_config("tabletop-tiny").train.llm_weights)
    loaded = load_for_eval(run_dir)
    val = load_split(loaded.config.data, "val", loaded.config.visual())
    val_sr = {w: evaluate(loaded, val, loaded.policy(llm_weight=w))["closed"]["sr"] for w in candidates}
    assert config["decoding"]["llm_weight"] == max(candidates, key=lambda w: (val_sr[w], -w)), val_sr
    logged = {row["metric"]: float(row["value"]) for row in read_log(run_dir / "log.csv") if row["split"] == "val"}
    assert all(logged[f"sr_llm_weight_{w:g}"] == pytest.approx(val_sr[w], abs=1e-3) for w in candidates)


def table_cells(table: str) -> dict[str, list[str]]:
    """{"closed set" | "open vocabulary": the row's four metric cells} of `format_table`'s text."""
    return {line[:16].strip(): line[16:].split() for line in table.splitlines()
            if line[:16].strip() in ("closed set", "open vocabulary")}


@pytest.mark.slow
def test_table_and_json(run_dir, capsys):
    """The table prints, in each metric's column, that metric of the model's plans, recomputed
    here from the predictions and the ground truth; the JSON holds the paraphrase split's open-
    vocabulary metrics of argmax plans, and no closed-set ones (the labels are not the model's)."""
    loaded = load_for_eval(run_dir)
    test = load_split(loaded.config.data, "test", loaded.config.visual())
    predicted = predictions(loaded, test)
    gt = np.stack(test.sequences())
    assert main(["eval", "--checkpoint", str(run_dir), "--split", "test"]) == 0
    table = capsys.readouterr().out
    assert "tabletop / test  T=3  n=12  decode=viterbi" in table
    assert all(title in table for title in METRIC_TITLES.values())
    cells = table_cells(table)
    for row, ids in (("closed set", predicted["closed"]), ("open vocabulary", predicted["open"])):
        assert cells[row] == [f"{procedure_metrics(ids, gt)[m]:.2f}" for m in METRICS], row

    assert main(["eval", "--checkpoint", str(run_dir / "model"), "--split", "paraphrase", "--decode", "argmax", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "paraphrase" and result["decode"] == "argmax" and result["samples"] == 12
    assert result["closed"] is None  # new labels: only open vocabulary can be scored
    paraphrase = load_split(loaded.config.data, "paraphrase", loaded.config.visual())
    named = predictions(loaded, paraphrase, loaded.policy(method="argmax"))["open"]
    assert result["open"] == pytest.approx(procedure_metrics(named, np.stack(paraphrase.sequences())))


def test_table_cells_are_read_by_column():
    """Negative control of the reader above: a table whose columns are swapped reads differently."""
    result = {"dataset": "d", "split": "s", "horizon": 3, "samples": 1, "decode": "viterbi",
              "closed": {"sr": 10.0, "macc": 20.0, "miou": 30.0, "miou_set": 40.0}, "open": None}
    assert table_cells(format_table(result)) == {"closed set": ["10.00", "20.00", "30.00", "40.00"],
                                                 "open vocabulary": ["n/a"] * 4}
    swapped = {**result, "closed": {"sr": 20.0, "macc": 10.0, "miou": 30.0, "miou_set": 40.0}}
    assert table_cells(format_table(swapped))["closed set"] != table_cells(format_table(result))["closed set"]


@pytest.mark.slow
def test_no_ground_truth_reaches_the_model_through_evaluate(run_dir):
    """Closed set, captions and open vocabulary (the paraphrase split retrieves against new
    labels) stay the same when every sample's steps and task are replaced by random values."""
    loaded = load_for_eval(run_dir)
    for split in ("test", "paraphrase"):
        assert ground_truth_leak(loaded, load_split(loaded.config.data, split, loaded.config.visual())) == []


@pytest.mark.slow
def test_the_leak_check_fails_a_model_that_reads_the_labels(run_dir):
    """Negative control: a model whose step logits also see the ground truth (as the authors'
    release feeds the true captions at evaluation) must be caught."""
    loaded = load_for_eval(run_dir)
    dataset = load_split(loaded.config.data, "test", loaded.config.visual())

    class ReadsTheLabels:
        def __init__(self, graphs, steps):
            self.graphs, self.steps = graphs, steps

        def run(self, graph, inputs):
            out = self.graphs.run(graph, inputs)
            if graph == "heads":
                out["logits"] = out["logits"] + 50.0 * torch.nn.functional.one_hot(self.steps, out["logits"].shape[-1])
            return out

    def leaky_predictions(loaded, dataset, policy):
        ids = []
        for batch in DataLoader(dataset, batch_size=5, collate_fn=collate):
            graphs = ReadsTheLabels(loaded.graphs, batch["steps"])
            ids.append(plan_batch(loaded.model, graphs, batch["start"], batch["goal"],
                                  dataclasses.replace(policy, captions=False)).step_ids)
        return {"closed": np.concatenate(ids), "open": None, "captions": []}

    assert ground_truth_leak(loaded, dataset, predict=leaky_predictions) == ["closed"]


@pytest.mark.slow
def test_evaluation_decodes_with_the_transition_matrix_of_the_train_split(run_dir):
    """Built from train alone: the train + test windows would give another matrix."""
    loaded = load_for_eval(run_dir)
    train_set, test = (load_split(loaded.config.data, s, loaded.config.visual()) for s in ("train", "test"))
    steps = train_set.vocab.num_steps
    assert np.array_equal(loaded.transition.astype(np.float32),
                          transition_matrix(train_set.sequences(), steps).astype(np.float32))
    assert not np.allclose(loaded.transition, transition_matrix(train_set.sequences() + test.sequences(), steps))


def test_table_marks_missing_families():
    result = {"dataset": "d", "split": "s", "horizon": 3, "samples": 2, "decode": "argmax",
              "closed": {"sr": 50.0, "macc": 62.5, "miou": 70.0, "miou_set": 55.0}, "open": None}
    lines = format_table(result).splitlines()
    assert lines[2].split()[-4:] == ["50.00", "62.50", "70.00", "55.00"]
    assert lines[3].split()[-4:] == ["n/a"] * 4


def test_bad_checkpoint_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path)]) == 2
    assert "is not a `planllm train` run or a model folder" in capsys.readouterr().err
