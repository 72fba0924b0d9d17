"""Evaluation measures the robot's path: `training.evaluation.evaluate` (batched) and `Planner.plan` (one
sample at a time, as the node calls it) run the same pipeline and give the same plans, on the
torch modules and on the exported ONNX graphs alike."""
from __future__ import annotations

import numpy as np
import pytest

from planllm_ros.export.exporter import export_model
from planllm_ros.model.folder import load_transition
from planllm_ros.model.graphs import TorchGraphs
from planllm_ros.model.openvocab import LabelIndex
from planllm_ros.model.planllm import PlanLLM
from planllm_ros.runtime.backends import load_backend
from planllm_ros.runtime.planner import Planner
from runtime_helpers import LABELS, save_tiny_model, tiny_config
from training.datasets.base import ProcedureDataset, Sample, StepDescription, StepVocabulary
from training.evaluation.evaluate import EvalModel, predict_split, step_ids


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("agreement")
    source = save_tiny_model(root / "model", tiny_config(tokens=True))
    export_model(source, root / "exported")
    return root / "exported"


def images_dataset(count: int) -> ProcedureDataset:
    rng = np.random.default_rng(3)
    samples = [Sample(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
                      np.zeros(3, dtype=np.int64), 0, f"v{i}") for i in range(count)]
    vocab = StepVocabulary(tuple(LABELS), ("task",))
    return ProcedureDataset("probe", "test", 3, samples, vocab, [StepDescription(label, "") for label in LABELS], "images")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_evaluation_and_the_planner_give_the_same_plans(exported, backend):
    dataset = images_dataset(5)
    model = PlanLLM.from_pretrained(exported).eval()
    graphs = TorchGraphs(model) if backend == "torch" else load_backend(backend, model, exported)
    loaded = EvalModel(model, None, load_transition(exported, len(LABELS)), exported, graphs)
    labels = LabelIndex(["slice the bread", "boil water", "open the drawer"], model.text_encoder())
    batches = predict_split(loaded, dataset, loaded.policy(), batch_size=2, labels=labels)
    planner = Planner.from_dir(exported, backend=backend)
    plans = [planner.plan(s.start, s.goal, labels=labels.labels) for s in dataset]
    assert step_ids(batches).tolist() == [p.step_ids for p in plans]
    assert [c for b in batches for c in b.captions] == [p.captions for p in plans]
    assert [[labels.labels[i] if i >= 0 else None for i in row] for b in batches for row in b.open_vocab_ids] == \
        [p.open_vocab_labels for p in plans]
