"""`planllm describe` with a tiny saved Llama + tokenizer: SCHEMA output, fallbacks, resume."""
import json

import pytest

from planllm_ros.cli import main
from planllm_ros.model.config import LLMConfig
from training.datasets.describe import parse_answer, read_labels
from planllm_ros.model.llm import build_builtin_llm
from training.datasets.descriptions import read_schema_file

TASKS = {"Make Tea": ["boil water", "add tea bag"], "Make Toast": ["slice bread", "toast bread"]}


@pytest.fixture
def tiny_llm(tmp_path):
    model, tokenizer = build_builtin_llm(LLMConfig(), [s for steps in TASKS.values() for s in steps], horizon=2)
    model.save_pretrained(str(tmp_path / "llm"))
    tokenizer.save_pretrained(str(tmp_path / "llm"))
    return tmp_path / "llm"


def test_describe_writes_schema_json_and_resumes(tiny_llm, tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(TASKS))
    out = tmp_path / "descriptions.json"
    # a previous, interrupted run left one step: it must be kept as it is
    kept = {"description": "Bring the water to a boil.", "before": ["The water is cold."], "after": ["The water boils."]}
    out.write_text(json.dumps({"Make Tea": {"boil water": kept}}))
    args = ["describe", "--labels", str(labels), "--llm", str(tiny_llm), "--out", str(out), "--max-new-tokens", "12"]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["Make Tea"]["boil water"] == kept
    assert {t: sorted(s) for t, s in data.items()} == {t: sorted(s) for t, s in TASKS.items()}
    parsed = read_schema_file(out)  # the datasets' own SCHEMA reader accepts it
    for task, steps in TASKS.items():
        for step in steps:
            entry = parsed[task][step]
            assert entry.description and entry.before and entry.after
    assert "3 to generate" in capsys.readouterr().out
    assert main(args) == 0 and "0 to generate" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp"))


def test_parse_answer_reads_a_good_answer_and_falls_back_on_junk():
    entry, fallback = parse_answer(" Pour the tea into a cup.\nBefore: The tea is in the pot.; The cup is empty.\n"
                                   "After: The cup holds tea.\n\nTask: next", "pour tea")
    assert not fallback
    assert entry == {"description": "Pour the tea into a cup.", "before": ["The tea is in the pot.", "The cup is empty."],
                     "after": ["The cup holds tea."]}
    entry, fallback = parse_answer(" ::::: ;;; 1 2 3", "pour tea")
    assert fallback and entry["description"] == "Pour tea." and entry["before"] and entry["after"]


def test_read_labels_formats_and_errors(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(["cut", "fry"]))
    assert read_labels(tmp_path / "a.json") == {"default": ["cut", "fry"]}
    (tmp_path / "b.txt").write_text("Tea\tboil water\nTea\tadd tea bag\n\nserve\n")
    assert read_labels(tmp_path / "b.txt") == {"Tea": ["boil water", "add tea bag"], "default": ["serve"]}
    (tmp_path / "c.json").write_text(json.dumps({"Tea": "boil"}))
    with pytest.raises(ValueError, match="c.json"):
        read_labels(tmp_path / "c.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_labels(tmp_path / "missing.json")
