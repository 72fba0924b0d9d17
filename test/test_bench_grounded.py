"""`planllm bench grounded --quick` on the bundled model: the comparison with another folder's
state head (--against) plans the same samples, so a folder against itself ties on every split."""
from __future__ import annotations

from pathlib import Path

import pytest

from planllm_ros.cli import main as planllm
from training.benchmarks.grounded import folder_names
from test_bench_horizons_lists import BUNDLED, table_rows

pytestmark = pytest.mark.slow


def test_a_head_against_itself_ties_on_the_same_samples(tmp_path):
    copy = tmp_path / "copy"
    copy.symlink_to(BUNDLED, target_is_directory=True)
    assert planllm(["bench", "grounded", "--quick", "--model", str(BUNDLED), "--against", str(copy),
                    "--out", str(tmp_path)]) == 0
    report = (tmp_path / "grounded-quick.md").read_text()
    sr = table_rows(report, "tabletop, T=3: SR")
    against = table_rows(report, "grounded decoding: tabletop-tiny vs copy")
    errors = table_rows(report, "state head error")
    assert list(against) == ["val", "novel-val", "test", "novel"]
    for k, (split, (mine, theirs, verdict, my_error, their_error)) in enumerate(against.items()):
        assert mine == theirs and my_error == their_error == errors[split][0]
        assert float(mine) == pytest.approx(float(sr["grounded"][k]), abs=0.05)
        assert "not distinguishable" in verdict
    # the exact task-independent ceiling, no data (test/test_tabletop_ceiling.py checks its counts)
    ceiling = table_rows(report, "task-independent ceiling")
    assert ceiling == {"test": ["41.9", "23.7"], "novel": ["25.9", "10.4"]}


def test_several_folders_give_the_mean_and_std_of_their_own_seeds(tmp_path):
    """Two folders, the bundled model and a copy whose data seed is 1: each plans its own seed's
    splits, and the table's cells are the mean ± std of what each folder gives alone."""
    import json
    import shutil

    seeded = tmp_path / "seed1"
    shutil.copytree(BUNDLED, seeded)
    config = json.loads((seeded / "train_config.json").read_text())
    config["data"]["seed"] = 1
    (seeded / "train_config.json").write_text(json.dumps(config))
    alone = {}
    for name, folder in (("bundled", BUNDLED), ("seed1", seeded)):
        assert planllm(["bench", "grounded", "--quick", "--allow-dirty", "--model", str(folder),
                        "--out", str(tmp_path / name)]) == 0
        alone[name] = table_rows((tmp_path / name / "grounded-quick.md").read_text(), "tabletop, T=3: SR")
    assert planllm(["bench", "grounded", "--quick", "--allow-dirty", "--model", str(BUNDLED), str(seeded),
                    "--out", str(tmp_path / "both")]) == 0
    report = (tmp_path / "both" / "grounded-quick.md").read_text()
    assert "- seeds: 0, 1" in report
    assert "(tabletop-tiny, seed1)" in report  # the folders by name
    assert folder_names([Path("a/seed0/states"), Path("a/seed1/states")]) == ["seed0/states", "seed1/states"]
    both = table_rows(report, "tabletop, T=3: SR")
    assert alone["bundled"]["grounded"] != alone["seed1"]["grounded"]  # other samples
    for decoding, cells in both.items():
        for k, cell in enumerate(cells):
            mean, std = (float(x) for x in cell.split(" ± "))
            a, b = (float(alone[name][decoding][k]) for name in ("bundled", "seed1"))
            assert mean == pytest.approx((a + b) / 2, abs=0.06) and std == pytest.approx(abs(a - b) / 2, abs=0.06)
    assert "pooled over the seeds" in report
    with pytest.raises(SystemExit, match="one --model"):
        planllm(["bench", "grounded", "--quick", "--allow-dirty", "--model", str(BUNDLED), str(seeded),
                 "--against", str(BUNDLED), "--out", str(tmp_path / "refused")])
