"""`planllm bench latency --quick` end to end: the real Planner on the bundled model for each
backend, and the real planner node in a child process over DDS (localhost, its own domain)."""
from __future__ import annotations

from pathlib import Path

import pytest

from planllm_ros.cli import main
from planllm_ros.paths import models_dir

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def table_rows(markdown: str, caption_part: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**") and caption_part in line)
    rows = []
    for line in lines[start + 4:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_latency_quick(ros_env: dict[str, str], tmp_path: Path) -> None:
    model = models_dir() / "tabletop-tiny"
    if not (model / "config.json").is_file():
        pytest.skip(f"the bundled model is not in {model}")
    assert main(["bench", "latency", "--quick", "--out", str(tmp_path), "--goals", "2", "--stream-seconds", "3"]) == 0
    text = (tmp_path / "latency-quick.md").read_text()
    planner = {row[0]: row[1:] for row in table_rows(text, "Planner per stage")}
    assert set(planner) == {"torch", "onnxruntime", "tensorrt"}
    for backend in ("torch", "onnxruntime"):  # both run on this CPU with the bundled model's ONNX graphs
        cells = planner[backend]
        steps, captions, total = ([float(x) for x in cells[i].split(" / ")] for i in (3, 4, 5))
        assert all(0 < p50 <= p95 for p50, p95 in (steps, captions, total)) and float(cells[-1]) > 0
        assert steps[0] < total[0]  # the step ids come before the captions
    (open_vocab,) = table_rows(text, "Open vocabulary: 100 candidate labels")
    assert open_vocab[0] in ("captions", "steps", "zero_shot", "joint") and float(open_vocab[1]) > 0
    p50, p95 = (float(x) for x in open_vocab[2].split(" / "))
    assert 0 < p50 <= p95 and open_vocab[3] in ("yes", "no")
    (node,) = table_rows(text, "Node end to end")
    ids_p50, ids_p95, plan_p50, plan_p95, plan_max = (float(x) for x in node[1:6])
    assert node[0] == "2" and 0 < ids_p50 <= ids_p95 and 0 < plan_p50 <= plan_p95 <= plan_max
    assert ids_p50 < plan_p50  # goal -> step ids beats goal -> captions: the ids go out first
    untold, told = table_rows(text, "Node end to end with the number of steps untold")
    assert untold[0] == "horizon 0: the model chooses" and told[0] == "told each window's true T"
    for row in (untold, told):
        ids_p50, ids_p95, plan_p50, plan_p95, plan_max = (float(x) for x in row[2:7])
        assert row[1] == "2" and 0 < ids_p50 <= ids_p95 and ids_p50 <= plan_p50 <= plan_p95 <= plan_max
    assert told[7] == "100 %"  # told its number of steps, every plan has exactly that many
    assert untold[7] in ("0 %", "50 %", "100 %")
    (stream,) = table_rows(text, "30 Hz camera")
    sent, received, lost, dropped, plans, followed = (int(x) for x in stream[:6])
    assert sent >= 60 and received + lost == sent and 0 < received <= sent
    # the bundled model follows its plan: frames are read against it, new plans only off it
    assert dropped <= received and plans + followed >= 1 and followed >= 1
    assert (tmp_path / "latency-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
