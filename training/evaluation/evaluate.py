"""Evaluate a trained model on one split: closed-set and open-vocabulary metrics.

Predictions come from the inference pipeline the robot runs (planllm_ros.model.pipeline), with
the model's own torch modules or, for an exported folder, a runtime backend (ONNX Runtime,
TensorRT), decoded by a decoding policy (planllm_ros.model.decoding; by default the one the
folder records). Only the start and goal observations reach the model; the ground truth is
used afterwards, to score. Closed set: the model's T step ids (Viterbi with the *train*
transition matrix saved in the model folder, or argmax), scored only when the split's label
list is the model's own (same labels, same order). Open vocabulary: the plan's steps named
from the split's own label texts by the policy's open_vocab method (planllm_ros.model.openvocab;
for the tabletop "paraphrase" splits these are paraphrased labels of the same steps). Metric
families: see training.evaluation.metrics (SR, mAcc, peer bitwise mIoU, set mIoU).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.folder import TRAIN_CONFIG_FILE, TRANSITION_FILE, ModelFolderError, load_model_folder
from planllm_ros.model.graphs import GraphRunner, TorchGraphs
from planllm_ros.model.openvocab import LabelIndex
from planllm_ros.model.pipeline import PlanBatch, plan_batch
from training.datasets.base import ProcedureDataset, collate
from training.evaluation.metrics import procedure_metrics
from training.train.checkpoint import CheckpointError
from training.train.config import RunConfig, from_tree

METRICS = ("sr", "macc", "miou", "miou_set")
METRIC_TITLES = {"sr": "SR", "macc": "mAcc", "miou": "mIoU (peer, bitwise)", "miou_set": "mIoU (set)"}


@dataclass
class EvalModel:
    model: Any  # PlanLLM
    config: RunConfig
    transition: np.ndarray  # the train transition matrix saved with the model
    path: Path
    graphs: GraphRunner  # what runs the model's graphs: its torch modules or a runtime backend
    states: Any = None  # the folder's step-effect model (models with a state head)

    def policy(self, **overrides) -> DecodingPolicy:
        """The decoding the folder records (its transition matrix, step-effect model and its
        config's decoding section), with `overrides` (DecodingPolicy.for_model: method, captions,
        llm_weight, ...)."""
        return DecodingPolicy.for_model(self.model, self.transition, states=self.states, **overrides)


def load_for_eval(path: str | Path, device: str = "cpu", backend: str = "torch") -> EvalModel:
    """A run directory (uses RUN/model) or a model folder written by the trainer (or exported).
    backend: torch (the model's own modules) or a runtime backend over the folder's exported
    graphs (onnxruntime, tensorrt)."""
    try:
        folder = load_model_folder(path, device, require=(TRAIN_CONFIG_FILE, TRANSITION_FILE))
    except ModelFolderError as error:
        raise CheckpointError(str(error)) from error
    config = from_tree(folder.train_config, str(folder.path / TRAIN_CONFIG_FILE))
    if backend == "torch":
        graphs: GraphRunner = TorchGraphs(folder.model)
    else:
        from planllm_ros.runtime.backends import load_backend

        graphs = load_backend(backend, folder.model, folder.path, device)
    return EvalModel(folder.model, config, folder.transition, folder.path, graphs, folder.states)


def predict_split(loaded: EvalModel, dataset: ProcedureDataset, policy: DecodingPolicy, batch_size: int = 64,
                  labels: LabelIndex | None = None) -> list[PlanBatch]:
    """The pipeline's output for every batch of `dataset`, from start/goal only."""
    return [plan_batch(loaded.model, loaded.graphs, batch["start"], batch["goal"], policy, labels=labels)
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)]


def step_ids(batches: list[PlanBatch]) -> np.ndarray:
    return np.concatenate([b.step_ids for b in batches]).astype(np.int64)


def predictions(loaded: EvalModel, dataset: ProcedureDataset, policy: DecodingPolicy | None = None,
                batch_size: int = 64) -> dict[str, Any]:
    """What the model predicts for `dataset` from start/goal only, decoded by `policy` (default:
    the folder's own, loaded.policy()): closed-set ids, captions and, for models with an LLM,
    the plans named from the split's own label texts (open vocabulary)."""
    model = loaded.model
    has_llm = bool(model.config.variant.use_llm)
    labels = LabelIndex(list(dataset.vocab.labels), model.text_encoder()) if has_llm else None
    batches = predict_split(loaded, dataset, policy or loaded.policy(), batch_size, labels=labels)
    return {"closed": step_ids(batches),
            "open": np.concatenate([b.open_vocab_ids for b in batches]) if has_llm else None,
            "captions": [c for b in batches for c in b.captions]}


def evaluate(loaded: EvalModel, dataset: ProcedureDataset, policy: DecodingPolicy | None = None,
             batch_size: int = 64) -> dict[str, Any]:
    """{"closed": metrics | None, "open": metrics | None, plus what was evaluated}, decoded by
    `policy` (default: the folder's own). Closed-set metrics need the split's label list to be
    the model's own, in the same order."""
    model = loaded.model
    policy = policy or loaded.policy()
    gt = np.stack(dataset.sequences()).astype(np.int64)
    own_labels = list(dataset.vocab.labels) == list(model.step_labels)
    if not own_labels and not model.config.variant.use_llm:
        raise CheckpointError(f"{dataset.name}/{dataset.split} names its steps differently from the model, which has "
                              f"no LLM to plan with new labels: nothing to score")
    predicted = predictions(loaded, dataset, policy, batch_size)
    closed = procedure_metrics(predicted["closed"], gt) if own_labels else None
    opened = procedure_metrics(predicted["open"], gt) if predicted["open"] is not None else None
    return {"dataset": dataset.name, "split": dataset.split, "horizon": dataset.horizon, "samples": len(dataset),
            "decode": policy.method, "closed": closed, "open": opened, "example_captions": predicted["captions"][:3]}


def ground_truth_leak(loaded: EvalModel, dataset: ProcedureDataset, policy: DecodingPolicy | None = None,
                      seed: int = 0, predict=predictions) -> list[str]:
    """Run `predict` (evaluation's own `predictions` by default) with `policy` (default: the
    folder's own) on `dataset` and on a copy whose ground truth (every sample's steps and task)
    is replaced by random values, and name the predictions that differ: empty when nothing
    derived from the ground truth reaches the model."""
    policy = policy or loaded.policy()
    rng = np.random.default_rng(seed)
    scrambled = dataclasses.replace(dataset, samples=[
        dataclasses.replace(s, steps=rng.integers(0, dataset.vocab.num_steps, s.steps.shape), task=-1)
        for s in dataset.samples])
    honest, other = predict(loaded, dataset, policy), predict(loaded, scrambled, policy)
    changed = [k for k in ("closed", "open") if honest[k] is not None and not np.array_equal(honest[k], other[k])]
    return changed + (["captions"] if honest["captions"] != other["captions"] else [])


def format_table(result: dict[str, Any]) -> str:
    """A fixed-width table: rows closed set / open vocabulary, columns the four metrics (percent)."""
    header = f"{result['dataset']} / {result['split']}  T={result['horizon']}  n={result['samples']}  decode={result['decode']}"
    names = [METRIC_TITLES[m] for m in METRICS]
    widths = [max(len(n), 7) for n in names]
    lines = [header, f"{'':<16}" + "  ".join(n.rjust(w) for n, w in zip(names, widths))]
    for label, key in (("closed set", "closed"), ("open vocabulary", "open")):
        values = result[key]
        cells = ["n/a".rjust(w) for w in widths] if values is None else \
            [f"{values[m]:.2f}".rjust(w) for m, w in zip(METRICS, widths)]
        lines.append(f"{label:<16}" + "  ".join(cells))
    lines.append("mIoU (peer, bitwise): the published tables' element-wise bitwise AND/OR of ids; mIoU (set): set IoU.")
    lines.append("closed set: only on splits with the model's own label list; open vocabulary: the split's labels, "
                 "named by the model's decoding.open_vocab method.")
    return "\n".join(lines)
