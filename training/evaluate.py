"""Evaluate a trained model on one split: closed-set and open-vocabulary metrics.

Only the start and goal observations reach the model (`predict(start, goal, ...)`); the ground
truth is used afterwards, to score. Closed set: the model's T step ids (Viterbi with the *train*
transition matrix saved beside the model, or argmax). Open vocabulary: the LLM's T captions are
matched to the split's own label texts with the frozen text encoder (for the tabletop
"paraphrase" split these are paraphrased labels under the same ids). Metric families: see
training.metrics (SR, mAcc, peer bitwise mIoU, set mIoU).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from training.checkpoint import CheckpointError
from training.config import RunConfig, from_tree
from training.datasets.base import ProcedureDataset, collate
from training.metrics import procedure_metrics
from training.trainer import MODEL_DIR, TRAIN_CONFIG, TRANSITION_FILE

METRICS = ("sr", "macc", "miou", "miou_set")
METRIC_TITLES = {"sr": "SR", "macc": "mAcc", "miou": "mIoU (peer, bitwise)", "miou_set": "mIoU (set)"}


@dataclass
class EvalModel:
    model: Any  # PlanLLM
    config: RunConfig
    transition: torch.Tensor
    path: Path


def load_for_eval(path: str | Path, device: str = "cpu") -> EvalModel:
    """A run directory (uses RUN/model) or a model directory written by the trainer."""
    from planllm_ros.model.planllm import PlanLLM

    path = Path(path)
    model_dir = path / MODEL_DIR if (path / MODEL_DIR).is_dir() else path
    for name in (TRAIN_CONFIG, TRANSITION_FILE):
        if not (model_dir / name).is_file():
            raise CheckpointError(f"{model_dir} is not a trained model directory: {name} is missing "
                                  f"(pass a run directory written by `planllm train`, or its model/ folder)")
    try:
        config = from_tree(json.loads((model_dir / TRAIN_CONFIG).read_text(encoding="utf-8")), str(model_dir / TRAIN_CONFIG))
        transition = load_file(str(model_dir / TRANSITION_FILE))["transition"]
    except (json.JSONDecodeError, KeyError, OSError) as error:
        raise CheckpointError(f"{model_dir}: cannot read {TRAIN_CONFIG} / {TRANSITION_FILE} ({error})") from error
    model = PlanLLM.from_pretrained(model_dir).to(device).eval()
    return EvalModel(model, config, transition, model_dir)


@torch.no_grad()
def predict_split(model, dataset: ProcedureDataset, transition: torch.Tensor, decode: str,
                  batch_size: int = 64, captions: bool = True) -> tuple[np.ndarray, list[list[str]]]:
    """(step ids (B, T), captions per sample) from start/goal only."""
    ids, texts = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        prediction = model.predict(batch["start"], batch["goal"], transition=transition, decode=decode, captions=captions)
        ids.append(torch.as_tensor(prediction.step_ids).cpu().numpy())
        texts.extend(prediction.captions if captions else [])
    return np.concatenate(ids).astype(np.int64), texts


def evaluate(loaded: EvalModel, dataset: ProcedureDataset, decode: str = "viterbi",
             batch_size: int = 64) -> dict[str, Any]:
    """{"closed": metrics | None, "open": metrics | None, plus what was evaluated}."""
    from planllm_ros.model.openvocab import retrieve_labels

    model = loaded.model
    gt = np.stack(dataset.sequences()).astype(np.int64)
    same_vocab = dataset.vocab.num_steps == len(model.step_labels)
    has_llm = bool(model.config.variant.use_llm)
    pred, captions = predict_split(model, dataset, loaded.transition, decode, batch_size, captions=has_llm)
    closed = procedure_metrics(pred, gt) if same_vocab else None
    opened = None
    if has_llm:
        flat = [c for sample in captions for c in sample]
        retrieved = np.asarray(retrieve_labels(flat, list(dataset.vocab.labels), model.text_encoder()), dtype=np.int64)
        opened = procedure_metrics(retrieved.reshape(gt.shape), gt)
    return {"dataset": dataset.name, "split": dataset.split, "horizon": dataset.horizon, "samples": len(dataset),
            "decode": decode, "closed": closed, "open": opened,
            "example_captions": captions[:3]}


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
    return "\n".join(lines)
