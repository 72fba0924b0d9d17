"""SCHEMA-format step descriptions: lookup per task, label fallback with a warning, errors that
name the file and the key path, and full coverage of the real descriptor files."""
from __future__ import annotations

import json
import logging

import pytest

from training.datasets.base import DatasetError, StepDescription, StepVocabulary
from training.datasets.benchmarks import read_benchmark
from training.datasets.descriptions import load_schema_descriptions

# "pour milk" in two tasks, with different descriptions
VOCAB = StepVocabulary(labels=("pour milk", "stir", "pour milk", "add sugar"), tasks=("Make Latte", "Make Tea"),
                       task_steps={0: (0, 1), 1: (2, 3)})
SCHEMA = {
    "Make Latte": {"pour milk": {"description": "Pour steamed milk into the espresso", "before": ["No milk."],
                                 "after": ["Milk in the cup.", "Foam on top."]},
                   "stir": {"description": "Stir the latte", "before": [], "after": []}},
    "Make Tea": {"pour milk": {"description": "Add a splash of cold milk to the tea", "before": ["Black tea."],
                               "after": ["Milky tea."]}},
}


def test_descriptions_follow_vocab_order_per_task(tmp_path, caplog):
    path = tmp_path / "descriptors.json"
    path.write_text(json.dumps(SCHEMA))
    with caplog.at_level(logging.WARNING):
        descriptions = load_schema_descriptions(path, VOCAB)
    assert descriptions == [
        StepDescription("pour milk", "Pour steamed milk into the espresso", ("No milk.",),
                        ("Milk in the cup.", "Foam on top.")),
        StepDescription("stir", "Stir the latte"),
        StepDescription("pour milk", "Add a splash of cold milk to the tea", ("Black tea.",), ("Milky tea.",)),
        StepDescription("add sugar", "add sugar"),  # absent from the file: its label
    ]
    assert "no description for 1 of 4 steps (using their labels): Make Tea/add sugar" in caplog.text


@pytest.mark.parametrize("content, message", [
    ('{"Make Tea": {', r"descriptors\.json: not valid JSON \(.* at line 1, column"),
    ("[]", r"descriptors\.json: <root> must be an object, got list"),
    ('{"Make Tea": ["pour milk"]}', r"descriptors\.json: \[\"Make Tea\"\] must be an object, got list"),
    ('{"Make Tea": {"pour milk": {"before": []}}}', r"\[\"Make Tea\"\]\[\"pour milk\"\] has no 'description' field"),
    ('{"Make Tea": {"pour milk": {"description": "x", "after": ["ok", 3]}}}',
     r"descriptors\.json: \[\"Make Tea\"\]\[\"pour milk\"\]\[\"after\"\]\[1\] must be a string, got int 3"),
    ('{"Make Tea": {"pour milk": {"description": "x", "before": "one sentence"}}}',
     r"\[\"Make Tea\"\]\[\"pour milk\"\]\[\"before\"\] must be a list, got str"),
])
def test_malformed_descriptions_name_file_and_key_path(tmp_path, content, message):
    path = tmp_path / "descriptors.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_schema_descriptions(path, VOCAB)


def test_missing_descriptions_file(tmp_path):
    with pytest.raises(DatasetError, match=r"absent\.json: file not found"):
        load_schema_descriptions(tmp_path / "absent.json", VOCAB)


@pytest.mark.real_data
@pytest.mark.parametrize("name, split", [("crosstask", "train"), ("niv", "train"), ("coin", "test")])
def test_real_descriptor_files_describe_every_step(shared_data, caplog, name, split):
    vocab, _ = read_benchmark(name, shared_data / name, split)
    with caplog.at_level(logging.WARNING):
        descriptions = load_schema_descriptions(shared_data / name / f"descriptors_{name}.json", vocab)
    assert "no description" not in caplog.text
    assert len(descriptions) == vocab.num_steps
    assert [d.label for d in descriptions] == list(vocab.labels)
    assert all(d.description and d.before and d.after for d in descriptions)
