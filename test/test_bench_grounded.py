"""`planllm bench grounded --quick` on the bundled model: the comparison with another folder's
state head (--against) plans the same samples, so a folder against itself ties on every split."""
from __future__ import annotations

from pathlib import Path

import pytest

from planllm_ros.cli import main as planllm
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

