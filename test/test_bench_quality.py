"""`planllm bench quality` and `planllm bench openvocab` end to end in quick mode: real training
runs of two variants (shared by both benchmarks through the work directory), real scoring."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from planllm_ros.cli import main
from training.bench.report import code_version

pytestmark = pytest.mark.slow
CELL = re.compile(r"^(\d+\.\d\d) ± (\d+\.\d\d)$")


def rows(markdown: str, caption_part: str) -> dict[str, list[str]]:
    """{first cell: other cells} of the table whose caption contains `caption_part`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**") and caption_part in line)
    out = {}
    for line in lines[start + 4:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out


def check_cell(cell: str) -> float:
    match = CELL.match(cell)
    assert match, cell
    mean = float(match.group(1))
    assert 0.0 <= mean <= 100.0 and float(match.group(2)) == 0.0  # one seed: std 0
    return mean


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


def test_quality_quick(work: Path) -> None:
    out = work / "results"
    assert main(["bench", "quality", "--quick", "--variants", "full", "no-llm", "--out", str(out),
                 "--work-dir", str(work / "runs")]) == 0
    text = (out / "quality-quick.md").read_text()
    assert "- command: `planllm bench quality --quick" in text and "- seeds: 0" in text
    for decode in ("argmax", "viterbi"):
        table = rows(text, f"tabletop, T=3, {decode} decoding")
        assert list(table) == ["Full (fused, progressive)", "w/o LLM"]
        for cells in table.values():
            assert len(cells) == 5 and cells[-1] == "1"
            values = [check_cell(c) for c in cells[:4]]
            assert values[0] <= values[1]  # a fully right sequence has every position right: SR <= mAcc
    assert (out / "quality-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = work / "runs" / "quick" / "tabletop-T3" / "full-seed0" / "model" / "model.safetensors"
    assert model.is_file()
    # scores are kept beside each run: a second report reuses them, and changed weights are re-scored
    scores = model.parent.parent / "bench-quality.json"
    saved = json.loads(scores.read_text())
    assert set(saved["scores"]) == {"argmax", "viterbi"}
    saved["scores"]["viterbi"]["sr"] = 42.0  # marks the cached value
    scores.write_text(json.dumps(saved))
    again = work / "again"
    assert main(["bench", "quality", "--quick", "--variants", "full", "--out", str(again),
                 "--work-dir", str(work / "runs")]) == 0
    assert rows((again / "quality-quick.md").read_text(), "viterbi decoding")["Full (fused, progressive)"][0] == "42.00 ± 0.00"
    saved["weights_sha256"] = "0" * 64  # as if the run had been retrained: scored afresh
    scores.write_text(json.dumps(saved))
    assert main(["bench", "quality", "--quick", "--variants", "full", "--out", str(again),
                 "--work-dir", str(work / "runs")]) == 0
    assert json.loads(scores.read_text())["scores"]["viterbi"]["sr"] != 42.0
    saved = json.loads(scores.read_text())
    assert saved["code_version"] == code_version()
    saved["scores"]["viterbi"]["sr"], saved["code_version"] = 42.0, "0" * 40 + "+" + "0" * 16
    scores.write_text(json.dumps(saved))  # as if scored by other code: scored afresh
    assert main(["bench", "quality", "--quick", "--variants", "full", "--out", str(again),
                 "--work-dir", str(work / "runs")]) == 0
    assert json.loads(scores.read_text())["scores"]["viterbi"]["sr"] != 42.0


def test_openvocab_quick_reuses_the_runs(work: Path) -> None:
    model = work / "runs" / "quick" / "tabletop-T3" / "full-seed0" / "model" / "model.safetensors"
    trained_at = model.stat().st_mtime_ns if model.exists() else None
    out = work / "results"
    assert main(["bench", "openvocab", "--quick", "--out", str(out), "--work-dir", str(work / "runs")]) == 0
    if trained_at is not None:
        assert model.stat().st_mtime_ns == trained_at  # the quality run's model was reused, not retrained
    text = (out / "openvocab-quick.md").read_text()
    for metric in ("SR", "mAcc", "mIoU (set)"):
        table = rows(text, f"T=3: {metric} ")
        assert list(table) == ["Full model: LLM captions -> labels", "Full model: step decoder -> labels",
                               "w/o LLM baseline: step decoder -> labels"]
        for cells in table.values():
            assert len(cells) == 4
            [check_cell(c) for c in cells]
    assert (out / "openvocab-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
