"""`planllm bench train --quick` end to end: real trainer runs of stage 2 (LoRA, every loss term),
as one process and as two under torchrun (gloo), each timed and measured in its own processes.
(Stage 1 goes through the same code with `train.stages=[1]`; leaving it out halves the test.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from planllm_ros.cli import main

pytestmark = pytest.mark.slow


def test_train_quick(tmp_path: Path) -> None:
    assert main(["bench", "train", "--quick", "--stages", "2", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "train-quick.md").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**tabletop-tiny on the CPU"))
    table = [line for line in lines[start + 4:] if line.startswith("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    assert [(r[0], r[1]) for r in rows] == [("2", "1"), ("2", "2")]
    for stage, processes, rate, seconds, per_process, total in rows:
        peaks = [float(p) for p in per_process.split(" / ")]
        assert len(peaks) == int(processes) and all(p > 100 for p in peaks)  # torch + model: well over 100 MB
        assert float(rate) > 0 and float(seconds) > 0 and abs(float(total) - sum(peaks)) <= 1
    assert (tmp_path / "train-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
