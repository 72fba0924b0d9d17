"""The model folder: the one on-disk format that the trainer writes, the exporter reads and
extends, and the runtime loads. Every file name lives here, and so do the reads and writes
that are not PlanLLM.save_pretrained's own (the train transition matrix, the training config).

    config.json              PlanLLMConfig (PlanLLM.save_pretrained)
    step_labels.json         the N step labels, index = step id
    step_descriptions.json   the N description texts behind the description embeddings
    model.safetensors        trainable weights (+ LoRA adapters until merged)
    llm/                     the built-in LLM (or, after export, the merged LLM) and its tokenizer
    transition.safetensors   the train-set step transition matrix (Viterbi decoding)
    train_config.json        the training config (how to rebuild the data it was scored on)
    onnx/<graph>.onnx        exported graphs (planllm_ros.model.graphs)
    model_card.json, MODEL_CARD.md   written by the exporter, metrics added by `planllm eval --card`
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

CONFIG_FILE = "config.json"
LABELS_FILE = "step_labels.json"
DESCRIPTIONS_FILE = "step_descriptions.json"
WEIGHTS_FILE = "model.safetensors"
LLM_DIR = "llm"
TRANSITION_FILE = "transition.safetensors"
TRAIN_CONFIG_FILE = "train_config.json"
ONNX_DIR = "onnx"
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


class ModelFolderError(ValueError):
    """A model folder lacks a file or holds a corrupt one; the message names the file."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary sibling and a rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def is_model_folder(directory: str | Path) -> bool:
    """Whether `directory` looks like a model folder (a training checkpoint also has a config.json)."""
    return all((Path(directory) / name).is_file() for name in (CONFIG_FILE, LABELS_FILE))


def save_transition(directory: str | Path, matrix: np.ndarray | torch.Tensor) -> Path:
    """Write the (N, N) train transition matrix (float32), atomically."""
    from safetensors.torch import save_file

    path = Path(directory) / TRANSITION_FILE
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({"transition": torch.as_tensor(np.asarray(matrix), dtype=torch.float32).contiguous()}, str(tmp))
    os.replace(tmp, path)
    return path


def load_transition(directory: str | Path, num_steps: int) -> np.ndarray | None:
    """The train transition matrix saved with a model (float64), or None when there is none
    (closed-set decoding is then argmax). Raises ModelFolderError for a corrupt file or one
    that does not fit the model's `num_steps`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory) / TRANSITION_FILE
    if not path.is_file():
        return None
    try:
        matrix = load_file(str(path))["transition"].double().numpy()
    except (SafetensorError, KeyError, OSError) as error:
        raise ModelFolderError(f"{path} is corrupt (expected a safetensors file with a 'transition' tensor): "
                               f"{error}") from error
    if matrix.shape != (num_steps, num_steps):
        raise ModelFolderError(f"{path}: transition matrix {matrix.shape} does not fit the model's {num_steps} steps")
    return matrix


def save_train_config(directory: str | Path, config: dict[str, Any]) -> Path:
    path = Path(directory) / TRAIN_CONFIG_FILE
    write_text_atomic(path, json.dumps(config, indent=1))
    return path


def load_train_config(directory: str | Path) -> dict[str, Any] | None:
    """The training config saved with a model (a plain dict), or None when there is none."""
    path = Path(directory) / TRAIN_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError) as error:
        raise ModelFolderError(f"{path} is not valid JSON: {error}") from error


def onnx_path(directory: str | Path, graph: str) -> Path:
    """Where the exporter writes graph `graph` (it may not exist yet)."""
    return Path(directory) / ONNX_DIR / f"{graph}.onnx"
