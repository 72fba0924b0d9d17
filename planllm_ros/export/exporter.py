"""`planllm export`: a trained model in, a deployable model folder out.

Steps: load the source (a `planllm train` run or model directory, a resumable training
checkpoint, or any PlanLLM.save_pretrained folder) -> merge LoRA into the LLM -> save the
merged model (config, labels, weights, llm/ with its tokenizer, the train transition matrix)
-> export the graphs to ONNX -> reload the folder and check ONNX Runtime against torch on
random and (when the training config is known) real samples -> optionally evaluate on a split
and build TensorRT engines -> write the model card (hashes of every file).

This is an offline tool: it may import `training` (configs, datasets, checkpoints, metrics);
the runtime never does.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from planllm_ros.export.merge import merge_lora
from planllm_ros.export.model_card import write_model_card
from planllm_ros.export.onnx_export import check_parity, encoder_inputs, export_onnx
from planllm_ros.runtime.planner import TRANSITION_FILE, load_transition

TRAIN_CONFIG = "train_config.json"
PARITY_SAMPLES = 8


class ExportError(RuntimeError):
    """The source cannot be exported; the message names the path and what is wrong."""


@dataclass
class Source:
    model: Any  # PlanLLM
    transition: np.ndarray | None
    run_config: Any | None  # training.config.RunConfig when the source recorded one
    path: Path
    kind: str  # "trained model" | "training checkpoint" | "saved model"


def load_source(path: str | Path) -> Source:
    """Whatever `planllm train` or PlanLLM.save_pretrained wrote, as a model on the CPU."""
    from planllm_ros.model.planllm import CONFIG_FILE, PlanLLM
    from training.checkpoint import STATE_JSON, WEIGHTS

    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"--checkpoint {path}: no such directory")
    model_dir = path / "model" if (path / "model" / TRAIN_CONFIG).is_file() else path
    if (model_dir / TRAIN_CONFIG).is_file():
        from training.evaluate import load_for_eval

        loaded = load_for_eval(model_dir)
        return Source(loaded.model, loaded.transition.double().numpy(), loaded.config, model_dir, "trained model")
    checkpoint_dir = path / "checkpoint" if (path / "checkpoint" / WEIGHTS).is_file() else path
    if (checkpoint_dir / WEIGHTS).is_file() and (checkpoint_dir / STATE_JSON).is_file():
        return _load_training_checkpoint(checkpoint_dir)
    if (path / CONFIG_FILE).is_file():
        model = PlanLLM.from_pretrained(path).eval()
        return Source(model, load_transition(path, model.config.num_steps), None, path, "saved model")
    raise ExportError(f"--checkpoint {path}: not a `planllm train` run, model directory, training checkpoint "
                      f"or PlanLLM.save_pretrained folder (no {TRAIN_CONFIG}, {WEIGHTS} or {CONFIG_FILE})")


def _load_training_checkpoint(directory: Path) -> Source:
    """A resumable checkpoint: rebuild the model from its config and train split (labels and
    descriptions), then load its best weights so far (else its current weights)."""
    from training.checkpoint import load_checkpoint
    from training.config import from_tree
    from training.datasets.base import transition_matrix
    from training.splits import load_split
    from training.trainer import build_model

    checkpoint = load_checkpoint(directory)
    config = from_tree(checkpoint.config, str(directory / "config.json"))
    train_set = load_split(config.data, "train", config.visual())
    model = build_model(config, train_set, torch.device("cpu"))
    weights = checkpoint.state.get("best_weights") or checkpoint.weights
    model.load_trainable_state_dict(weights)
    transition = transition_matrix(train_set.sequences(), train_set.vocab.num_steps)
    return Source(model.eval(), transition, config, directory, "training checkpoint")


def merge_and_save(source: Source, out: Path) -> None:
    """Fold LoRA into the LLM and save the folder the runtime loads (PlanLLM.save_pretrained
    layout). A local-path LLM (e.g. Vicuna) is written merged into out/llm/."""
    model = source.model
    if model.config.variant.use_llm:
        model.llm.model = merge_lora(model.llm.model)
        model.llm.lora_applied = False
        model.config.llm.path = None  # the merged LLM lives in out/llm/, not at the original path
    model.save_pretrained(out)
    if source.transition is not None:
        save_file({"transition": torch.as_tensor(source.transition, dtype=torch.float32)}, str(out / TRANSITION_FILE))
    if source.run_config is not None:
        (out / TRAIN_CONFIG).write_text(json.dumps(source.run_config.to_dict(), indent=1))


def _real_batches(source: Source, count: int) -> list[dict[str, torch.Tensor]]:
    """A few real validation samples (feature observations) for the parity check."""
    if source.run_config is None or source.run_config.data.observation != "features":
        return []
    from training.splits import load_split

    dataset = load_split(source.run_config.data, "val", source.run_config.visual())
    samples = dataset.samples[:count]
    return [{"start": torch.from_numpy(np.stack([s.start for s in samples])).float(),
             "goal": torch.from_numpy(np.stack([s.goal for s in samples])).float()}]


def _descriptions(source: Source, labels: list[str]) -> list[str]:
    """The description text behind each step's embedding, from the training data when known."""
    if source.run_config is None:
        return [""] * len(labels)
    from training.splits import load_split

    dataset = load_split(source.run_config.data, "val", source.run_config.visual())
    if list(dataset.vocab.labels) != labels:
        raise ExportError(f"{source.path}: the training data's step labels no longer match the model's")
    return [d.text() for d in dataset.descriptions]


def _evaluate(out: Path, run_config, split: str) -> dict[str, Any]:
    from training.evaluate import evaluate, load_for_eval
    from training.splits import load_split

    result = evaluate(load_for_eval(out), load_split(run_config.data, split, run_config.visual()))
    return {"split": split, "samples": result["samples"], "decode": result["decode"],
            "closed": result["closed"], "open": result["open"]}


def export_model(checkpoint: str | Path, out: str | Path, name: str | None = None, eval_split: str | None = None,
                 tensorrt: bool = False, fp16: bool = False, overwrite: bool = False) -> dict:
    """Run every export step; returns the model card."""
    from planllm_ros.model.planllm import PlanLLM

    out = Path(out)
    if tensorrt:
        from planllm_ros.export.tensorrt_build import tensorrt_unavailable_reason

        reason = tensorrt_unavailable_reason()
        if reason:
            raise ExportError(f"--tensorrt: {reason}")
    if out.exists():
        if not overwrite:
            raise ExportError(f"--out {out} exists: pass --overwrite to replace it")
        shutil.rmtree(out)
    source = load_source(checkpoint)
    if eval_split and source.run_config is None:
        raise ExportError(f"--eval-split needs the training config, and {source.path} has none")
    config_before = source.model.config.to_dict()
    merge_and_save(source, out)
    export_onnx(source.model, out)

    reloaded = PlanLLM.from_pretrained(out).eval()
    generator = torch.Generator().manual_seed(0)
    batches = [encoder_inputs(reloaded, 1, generator), encoder_inputs(reloaded, 4, generator)]
    parity = check_parity(reloaded, out, batches + _real_batches(source, PARITY_SAMPLES))
    metrics = _evaluate(out, source.run_config, eval_split) if eval_split else {}
    engines = _build_engines(out, reloaded, fp16) if tensorrt else None
    labels = list(reloaded.step_labels)
    return write_model_card(
        out, name=name or out.name, config=reloaded.config.to_dict(), labels=labels,
        descriptions=_descriptions(source, labels), transition=source.transition, metrics=metrics,
        source={"path": str(source.path), "kind": source.kind, "llm_path": config_before["llm"]["path"],
                "tensorrt_engines": engines},
        parity=parity,
    )


def _build_engines(out: Path, model, fp16: bool) -> dict[str, str]:
    """Build (or find cached) TensorRT engines for this GPU; {graph: engine file}."""
    from planllm_ros.export.tensorrt_build import EngineCache, build_engine, current_key
    from planllm_ros.runtime.backends.base import onnx_path
    from planllm_ros.runtime.graphs import graph_names

    cache, engines = EngineCache(), {}
    for graph in graph_names(model):
        path = onnx_path(out, graph)
        key = current_key(path, fp16)
        cache.get_or_build(path, key, lambda p: build_engine(p, fp16))
        engines[graph] = str(cache.engine_path(path, key))
    return engines
