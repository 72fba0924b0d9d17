"""`planllm bench horizons` and `planllm bench openvocab --lists` at CI size on the bundled model:
the tables hold what the pipeline gives on the same samples, and what each planner or mapping
does differently shows where it should."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from planllm_ros.cli import main as planllm

BUNDLED = Path(__file__).resolve().parents[1] / "models" / "tabletop-tiny"

pytestmark = pytest.mark.slow


def table_rows(report: str, caption: str) -> dict[str, list[str]]:
    """The rows (first cell -> the others) of the table whose caption starts with `caption`."""
    block = report.split(f"**{caption}", 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split("|") for line in block.splitlines()[2:]]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_the_horizons_table_is_the_pipelines_plans_on_its_samples(tmp_path):
    from training.evaluation.evaluate import load_for_eval, predictions
    from training.train.horizon import mixed_split

    assert planllm(["bench", "horizons", "--quick", "--model", str(BUNDLED), "--out", str(tmp_path)]) == 0
    report = (tmp_path / "horizons-quick.md").read_text()
    sr = table_rows(report, "tabletop: SR")
    horizon = table_rows(report, "tabletop: horizon accuracy")
    # columns: all T, T=1..6; told T at the model's own T is the benchmarks' protocol
    loaded = load_for_eval(BUNDLED)
    dataset = mixed_split(loaded.config.data, "test", range(3, 4), 10, loaded.model.config.visual)[3]
    told = predictions(loaded, dataset, loaded.policy(captions=False))["closed"]
    expected = 100.0 * float((told == np.stack(dataset.sequences())).all(1).mean())
    assert float(sr["told T"][3]) == pytest.approx(expected, abs=0.05)
    # reading the true states, one step is never mistaken for more
    assert float(horizon["true states, shortest"][1]) == 100.0
    assert "chooses T" in horizon and "told T" not in horizon  # told T is always right about T
    assert re.search(r"\| all \| [0-9.]+ \|", report)


def test_several_folders_each_plan_their_own_seed_and_pool_like_one_folder_on_those_seeds(tmp_path):
    """Folders of retrained seeds pool as one folder's data seeds do: the bundled model given
    twice, on seeds 0 and 1, makes the same tables as the bundled model on --seeds 0 1."""
    common = ["bench", "horizons", "--samples", "3", "--allow-dirty"]
    assert planllm([*common, "--model", str(BUNDLED), "--seeds", "0", "1", "--out", str(tmp_path / "one")]) == 0
    assert planllm([*common, "--model", str(BUNDLED), str(BUNDLED), "--seeds", "0", "1",
                    "--out", str(tmp_path / "two")]) == 0
    one, two = ((tmp_path / d / "horizons.md").read_text() for d in ("one", "two"))
    for caption in ("tabletop: SR", "tabletop: horizon accuracy", "target per T"):
        assert table_rows(one, caption) == table_rows(two, caption), caption
    assert "planning seed(s) 0, 1;" in two  # the same folder twice is one model on two seeds
    with pytest.raises(SystemExit, match="need as many distinct seeds"):
        planllm([*common, "--model", str(BUNDLED), str(BUNDLED), "--seeds", "0", "0", "--out", str(tmp_path / "bad")])


def test_label_lists_with_gaps_come_out_unknown_where_the_older_mapping_guessed(tmp_path, shared_data):
    assert planllm(["bench", "openvocab", "--lists", "--quick", "--model", str(BUNDLED), "--distractors",
                    str(shared_data), "--out", str(tmp_path)]) == 0
    report = (tmp_path / "openvocab-lists-quick.md").read_text()
    rows = {}
    for split in ("test", "val"):
        table = report.split(f"**tabletop, T=3, {split} episodes", 1)[1].split("\n\n", 2)[1]
        for line in table.splitlines()[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[(split, cells[0].split(" (")[0], cells[1])] = cells[2:]
    for split in ("test", "val"):
        half = "half the steps labelled"
        assert float(rows[(split, half, "today")][-1]) == 0.0  # the older mapping names every step
        assert float(rows[(split, half, "model")][-1]) > 50.0  # most unlabelled positions say unknown
    assert "Open-vocabulary time per plan, 300-label list" in report
