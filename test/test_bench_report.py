"""The shared report writer of `planllm bench` and the exact-command header."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest
from PIL import Image

from training.benchmarks.report import Table, bar_plot, mean_std, write_report
from training.cli.bench import add_arguments, command_line


def test_table_markdown_and_bad_rows() -> None:
    table = Table("caption", ["a", "b"], [["1", "2"], ["3", "4"]])
    assert table.markdown().splitlines() == ["**caption**", "", "| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        Table("bad", ["a", "b"], [["1"]]).markdown()


def test_mean_std_is_population_std() -> None:
    assert mean_std([1.0, 3.0]) == "2.00 ± 1.00"
    assert mean_std([5.0]) == "5.00 ± 0.00"


def test_write_report_header_tables_and_plot(tmp_path: Path) -> None:
    plot = bar_plot(tmp_path / "x.png", "title", ["g1", "g2", "g3"], {"s1": [1.0, 2.0, 3.0], "s2": [2.0, float("nan"), 1.0]},
                    "ms", {"s1": [0.1, 0.2, 0.3]})
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 400
    path = write_report(tmp_path / "x.md", "Title", "planllm bench x --quick", [0, 1],
                        [Table("t", ["a"], [["1.00"]])], ["a note"], plot)
    text = path.read_text()
    for line in ("# Title", "- command: `planllm bench x --quick`", "- seeds: 0, 1", "- a note", "![Title](x.png)",
                 "| a |", "| 1.00 |"):
        assert line in text.splitlines(), line
    for key in ("- machine: ", "- date: ", "- versions: Python ", "- code version: "):
        assert any(line.startswith(key) for line in text.splitlines()), key
    assert "torch " in text and "planllm_ros commit" in text
    with pytest.raises(ValueError, match="has 2 values for 3 groups"):
        bar_plot(tmp_path / "y.png", "t", ["a", "b", "c"], {"s": [1.0, 2.0]}, "ms")


def test_command_line_spells_out_every_option() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["quality", "--quick", "--variants", "full", "no-llm", "--seeds", "3",
                              "--set", "data.train_samples=60", "--set", "train.stage2.epochs=2"])
    command = command_line(args)
    assert command.startswith("planllm bench quality --quick --out bench/results --threads 1 ")
    assert "--variants full no-llm" in command and "--seeds 3" in command and "--work-dir runs/bench" in command
    assert "--set data.train_samples=60 --set train.stage2.epochs=2" in command
    again = parser.parse_args(shlex.split(command)[2:])  # the header's command reproduces the run exactly
    assert {k: v for k, v in vars(again).items() if k != "_parser"} == {k: v for k, v in vars(args).items() if k != "_parser"}
