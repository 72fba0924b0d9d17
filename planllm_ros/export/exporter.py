"""`planllm export`: a model folder in, a deployable model folder out.

Steps: load the source (a `planllm train` run directory, whose model/ is used, or any model
folder: planllm_ros.model.folder) -> merge LoRA into the LLM -> save the merged folder (config,
labels, descriptions, weights, llm/ with its tokenizer, the train transition matrix, the step-effect
model of a state head, the training
config) -> export the graphs to ONNX -> reload the folder and check ONNX Runtime against torch
on random inputs and, when given, real samples -> optionally quantize the backbone graph to int8
(calibrated on real images) and build TensorRT engines -> write the model card (hashes of every
file). It depends on the folder format and the model only, never on the trainer; evaluation
metrics are added to the card by `planllm eval --card`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from planllm_ros.export.merge import merge_lora
from planllm_ros.export.model_card import write_model_card
from planllm_ros.export.onnx_export import check_parity, export_onnx, graph_differences, random_observations
from planllm_ros.model.folder import (STATE_MODEL_FILE, ModelFolder, ModelFolderError, load_model_folder,
                                      save_train_config, save_transition)


class ExportError(RuntimeError):
    """The source cannot be exported; the message names the path and what is wrong."""


def load_source(path: str | Path) -> ModelFolder:
    """A run directory (its model/) or a model folder, with its model on the CPU."""
    try:
        return load_model_folder(path)
    except ModelFolderError as error:
        raise ExportError(f"--checkpoint: {error}") from error


def merge_and_save(source: ModelFolder, out: Path) -> None:
    """Fold LoRA into the LLM and save the folder the runtime loads. A local-path LLM (e.g.
    Vicuna) is written merged into out/llm/."""
    model = source.model
    if model.config.variant.use_llm:
        model.llm.model = merge_lora(model.llm.model)
        model.llm.lora_applied = False
        model.config.llm.path = None  # the merged LLM lives in out/llm/, not at the original path
    model.save_pretrained(out)
    if source.transition is not None:
        save_transition(out, source.transition)
    if source.train_config is not None:
        save_train_config(out, source.train_config)
    if source.states is not None:
        source.states.save(out / STATE_MODEL_FILE)


def set_decoding(model, assignments: list[str]) -> None:
    """Apply `KEY=VALUE` settings of the model's inference-time decoding section (e.g.
    `open_vocab.method=steps`, chosen after training on a val split), checked like any config."""
    from planllm_ros.config_tree import ConfigError, assign, split_assignment
    from planllm_ros.model.config import PlanLLMConfig

    tree = model.config.to_dict()
    try:
        for assignment in assignments:
            parts, value = split_assignment(assignment, "--decoding", "open_vocab.method=steps")
            assign(tree, ["decoding", *parts], value, f"--decoding {'.'.join(parts)}")
    except ConfigError as error:
        raise ExportError(str(error)) from error
    try:
        model.config.decoding = PlanLLMConfig.from_dict(tree).decoding
    except ConfigError as error:
        raise ExportError(f"--decoding: {error}") from error


def read_samples(path: str | Path) -> dict[str, torch.Tensor]:
    """Real start/goal observations for parity and int8 calibration: an .npz with `start` and
    `goal` arrays (uint8 images (N, H, W, 3) or features), as `planllm data samples` writes."""
    try:
        with np.load(path, allow_pickle=False) as data:
            start, goal = data["start"], data["goal"]
    except (OSError, KeyError, ValueError) as error:
        raise ExportError(f"--samples {path}: expected an .npz file with 'start' and 'goal' arrays ({error})") from error
    if start.shape != goal.shape or len(start) == 0:
        raise ExportError(f"--samples {path}: 'start' {start.shape} and 'goal' {goal.shape} must match and be non-empty")
    return {"start": torch.from_numpy(start), "goal": torch.from_numpy(goal)}


def export_model(checkpoint: str | Path, out: str | Path, name: str | None = None, samples: str | Path | None = None,
                 int8: bool = False, tensorrt: bool = False, fp16: bool = False, overwrite: bool = False,
                 decoding: list[str] | None = None) -> dict:
    """Run every export step; returns the model card. `samples`: real observations (.npz) for
    the parity check and, with `int8`, the backbone's calibration images. `decoding`:
    KEY=VALUE settings of the model's decoding section to export with (set_decoding)."""
    from planllm_ros.model.graphs import takes_images

    out = Path(out)
    if tensorrt:
        from planllm_ros.runtime.backends.tensorrt_engines import tensorrt_unavailable_reason

        reason = tensorrt_unavailable_reason()
        if reason:
            raise ExportError(f"--tensorrt: {reason}")
    if out.exists():
        if not overwrite:
            raise ExportError(f"--out {out} exists: pass --overwrite to replace it")
        shutil.rmtree(out)
    real = read_samples(samples) if samples is not None else None
    source = load_source(checkpoint)
    set_decoding(source.model, decoding or [])
    if int8 and not (takes_images(source.model) and real is not None and real["start"].dtype == torch.uint8):
        raise ExportError("--int8 quantizes the image backbone: it needs a model that takes images and --samples "
                          "holding uint8 training images to calibrate on")
    llm_path = source.model.config.llm.path
    merge_and_save(source, out)
    export_onnx(source.model, out)

    reloaded = load_model_folder(out).model
    generator = torch.Generator().manual_seed(0)
    batches = [random_observations(reloaded, 1, generator), random_observations(reloaded, 4, generator)]
    if real is not None:
        batches.append({k: v[:8] for k, v in real.items()})
    parity = check_parity(reloaded, out, batches)
    quantized = None
    if int8:
        from planllm_ros.export.quantize import quantize_backbone

        images = torch.cat([real["start"], real["goal"]]).numpy()
        quantized = {**quantize_backbone(reloaded, out, images),
                     "max_abs_diff": graph_differences(reloaded, out, batches[-1:])}
    engines = _build_engines(out, reloaded, fp16) if tensorrt else None
    return write_model_card(
        out, name=name or out.name, config=reloaded.config.to_dict(), labels=list(reloaded.step_labels),
        descriptions=reloaded.step_descriptions or [""] * len(reloaded.step_labels), transition=source.transition,
        metrics={}, source={"path": str(source.path), "llm_path": llm_path, "tensorrt_engines": engines,
                            "int8": quantized},
        parity=parity,
    )


def _build_engines(out: Path, model, fp16: bool) -> dict[str, str]:
    """Build (or find cached) TensorRT engines for this GPU; {graph: engine file}."""
    from planllm_ros.model.graphs import graph_names
    from planllm_ros.runtime.backends.base import onnx_path
    from planllm_ros.runtime.backends.tensorrt_engines import EngineCache, build_engine, current_key

    cache, engines = EngineCache(), {}
    for graph in graph_names(model):
        path = onnx_path(out, graph)
        key = current_key(path, fp16)
        cache.get_or_build(path, key, lambda p: build_engine(p, fp16))
        engines[graph] = str(cache.engine_path(path, key))
    return engines
