"""The model folder: the one on-disk format that the trainer writes, the exporter reads and
extends, and the runtime loads. Every file name lives here, and so do the reads and writes
that are not PlanLLM.save_pretrained's own (the train transition matrix, the training config)
and the one loader (`load_model_folder`) that the Planner, evaluation and the exporter share.

    config.json              PlanLLMConfig (PlanLLM.save_pretrained)
    step_labels.json         the N step labels, index = step id
    step_descriptions.json   the N description texts behind the description embeddings
    model.safetensors        trainable weights (+ LoRA adapters until merged)
    llm/                     the built-in LLM (or, after export, the merged LLM) and its tokenizer
    transition.safetensors   the train-set step transition matrix (Viterbi decoding)
    state_model.json         models with a state head: the state propositions and each step's
                             preconditions, effects and deletions (planllm_ros.model.states)
    train_config.json        the training config (how to rebuild the data it was scored on)
    onnx/<graph>.onnx        exported graphs (planllm_ros.model.graphs)
    model_card.json, MODEL_CARD.md   written by the exporter, metrics added by `planllm eval --card`

A `planllm train` run directory RUN holds its model folder at RUN/model (written at the end of
the run) and its resumable state at RUN/checkpoint; every reader takes either path.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
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
STATE_MODEL_FILE = "state_model.json"
TRAIN_CONFIG_FILE = "train_config.json"
ONNX_DIR = "onnx"
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"
MODEL_DIR = "model"  # RUN/model: a run directory's model folder
CHECKPOINT_DIR = "checkpoint"  # RUN/checkpoint: a run directory's resumable training state

# what a file beyond config and labels holds, for the message when one is missing
_CONTENTS = {WEIGHTS_FILE: "the trained weights",
             TRANSITION_FILE: "the train transition matrix, which `planllm train` writes",
             TRAIN_CONFIG_FILE: "the training config, which `planllm train` writes",
             STATE_MODEL_FILE: "the step-effect model of the state head, which `planllm train` writes"}
_LLM_DTYPES = ("float32", "float16", "bfloat16")


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


def resolve(path: str | Path) -> Path:
    """The model folder that `path` names: RUN/model for a `planllm train` run directory, else
    `path` itself. Raises ModelFolderError, saying what to pass, when it is neither."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(f"{path} does not exist")
    for directory in (path / MODEL_DIR, path):
        if is_model_folder(directory):
            return directory
    raise ModelFolderError(f"{path} is not a `planllm train` run or a model folder: neither it nor its {MODEL_DIR}/ "
                           f"holds {CONFIG_FILE} and {LABELS_FILE}; a run writes its model folder at the end, so "
                           f"finish an interrupted one with `planllm train --resume`")


@dataclass
class ModelFolder:
    """A loaded model folder: the model and the files saved beside it."""

    path: Path  # the model folder itself (RUN/model for a run directory)
    model: Any  # PlanLLM, in eval mode
    transition: np.ndarray | None  # the train transition matrix, when the folder has one
    train_config: dict[str, Any] | None  # the training config, when the folder has one
    states: Any = None  # the step-effect model (planllm_ros.model.states.StateModel) of a state-head model


def load_model_folder(path: str | Path, device: str | torch.device = "cpu", *, require: Sequence[str] = (),
                      llm_dtype: str | None = None, backbone_checkpoint: str | None = None) -> ModelFolder:
    """Resolve `path` (a run directory or a model folder) and load everything in it, checked.

    require: the optional files (TRANSITION_FILE, TRAIN_CONFIG_FILE) the caller cannot do
    without. Load-time options are applied here, before anyone holds the model, so nothing
    changes it later: llm_dtype (float32 | float16 | bfloat16) casts the LLM, backbone_checkpoint
    is where the weights of the model's image backbone are, when they are not bundled.
    A bad option is a ValueError; every fault of the folder is a ModelFolderError naming the
    path, what is missing or corrupt and, where the user can act, what to do."""
    if llm_dtype is not None and llm_dtype not in _LLM_DTYPES:
        raise ValueError(f"llm_dtype must be one of {sorted(_LLM_DTYPES)}, got {llm_dtype!r}")
    directory = resolve(path)
    missing = [name for name in (WEIGHTS_FILE, *require) if not (directory / name).is_file()]
    if missing:
        raise ModelFolderError(f"{directory} is an incomplete model folder: "
                               + "; ".join(f"{name} is missing ({_CONTENTS[name]})" for name in missing))
    model = _load_model(directory, torch.device(device))
    if model.has_state_head and not (directory / STATE_MODEL_FILE).is_file():
        raise ModelFolderError(f"{directory} is an incomplete model folder: {STATE_MODEL_FILE} is missing "
                               f"({_CONTENTS[STATE_MODEL_FILE]})")
    if backbone_checkpoint:
        model.config.visual.backbone_checkpoint = backbone_checkpoint
    if llm_dtype is not None and model.config.variant.use_llm:
        model.llm.model.to(getattr(torch, llm_dtype))
    return ModelFolder(directory, model, load_transition(directory, model.config.num_steps),
                       load_train_config(directory), load_state_model(directory, model) if model.has_state_head else None)


def load_state_model(directory: str | Path, model):
    """The folder's step-effect model, checked against the model's steps and state head."""
    from planllm_ros.model.states import StateModel

    path = Path(directory) / STATE_MODEL_FILE
    try:
        states = StateModel.load(path)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise ModelFolderError(f"{path} is corrupt: {error}") from error
    expected = (model.config.num_steps, int(model.state_embeddings.shape[0]))
    if (states.num_steps, states.num_propositions) != expected:
        raise ModelFolderError(f"{path}: {states.num_steps} steps and {states.num_propositions} propositions do not "
                               f"fit the model's {expected[0]} steps and {expected[1]} state embeddings")
    return states


def _load_model(directory: Path, device: torch.device):
    """PlanLLM.from_pretrained with every failure turned into a ModelFolderError naming the folder."""
    from safetensors import SafetensorError

    from planllm_ros.config_tree import ConfigError
    from planllm_ros.model.planllm import PlanLLM

    try:
        return PlanLLM.from_pretrained(directory, device).eval()
    except FileNotFoundError as error:
        raise ModelFolderError(f"cannot load the model in {directory}: {error}") from error
    except (SafetensorError, ConfigError, ValueError, KeyError, OSError, RuntimeError) as error:
        raise ModelFolderError(f"the model in {directory} is corrupt or incomplete: "
                               f"{type(error).__name__}: {error}") from error


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
