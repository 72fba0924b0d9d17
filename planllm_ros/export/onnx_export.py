"""Export a PlanLLM model's graphs (planllm_ros.model.graphs) to ONNX and check ONNX Runtime
against torch.

The legacy TorchScript exporter is used (`dynamo=False`): it needs no extra package and traces
these modules (the MobileNetV2 trunk, Blip2QFormerModel, nn.MultiheadAttention,
nn.TransformerEncoderLayer) with a dynamic batch dimension. The horizon is fixed by the model's
T learnable queries.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import torch

from planllm_ros.model.backbone import input_spec, preprocess
from planllm_ros.model.folder import onnx_path
from planllm_ros.model.graphs import BACKBONE, ENCODER, HEADS, graph_modules, graph_names, takes_images

OPSET = 17
PARITY_ATOL = 1e-4


class ParityError(RuntimeError):
    """ONNX Runtime and torch disagree by more than the tolerance."""


def random_observations(model, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random start/goal observations the model takes: uint8 images for image models (the
    backbone graph is checked too), else features shaped like the encoder graph's inputs."""
    if takes_images(model):
        return {name: torch.randint(0, 256, (batch, 96, 128, 3), dtype=torch.uint8, generator=generator)
                for name in ("start", "goal")}
    return encoder_inputs(model, batch, generator)


def encoder_inputs(model, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random features shaped like the encoder graph's inputs: (batch, L, C) token sets."""
    visual = model.config.visual
    return {name: torch.randn(batch, visual.num_tokens, visual.feature_dim, generator=generator)
            for name in ("start", "goal")}


def backbone_inputs(model, observations: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The backbone graph's input for a batch of uint8 start/goal images: both, preprocessed."""
    visual = model.config.visual
    spec = input_spec(visual.backbone, visual.open_clip_model)
    return {"images": torch.cat([preprocess(observations[k], *spec) for k in ("start", "goal")])}


@torch.no_grad()
def heads_inputs(model, encoder_out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the heads graph reads: the encoder's outputs plus, for fused models, the LLM's h from
    the prompt pass the robot runs (`read_prompt`, as in planllm_ros.model.pipeline)."""
    inputs = {"visual_tokens": encoder_out["visual_tokens"], "step_tokens": encoder_out["step_tokens"]}
    if model.uses_fusion:
        inputs["llm_hidden"] = model.llm.read_prompt(encoder_out["state_tokens"], encoder_out["step_tokens"]).hidden
    return inputs


@contextmanager
def _slow_path(model):
    """Grad on and parameters requiring grad while tracing: in eval mode without grad,
    nn.TransformerEncoderLayer / nn.MultiheadAttention take fused fast-path kernels
    (aten::_transformer_encoder_layer_fwd, ...) that have no ONNX export."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with torch.enable_grad():
            for p, _ in flags:
                p.requires_grad_(True)
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def export_onnx(model, out_dir: str | Path, opset: int = OPSET) -> dict[str, Path]:
    """Write <out_dir>/onnx/<graph>.onnx for each graph of `model` (fp32, eval mode, CPU)."""
    model = model.float().eval().cpu()
    modules = graph_modules(model)
    generator = torch.Generator().manual_seed(0)
    sample = encoder_inputs(model, batch=2, generator=generator)
    samples = {ENCODER: sample}
    if BACKBONE in modules:
        samples[BACKBONE] = backbone_inputs(model, random_observations(model, 1, generator))
    if HEADS in modules:
        with torch.no_grad():
            encoder_out = dict(zip(modules[ENCODER].output_names, modules[ENCODER](**sample)))
        samples[HEADS] = heads_inputs(model, encoder_out)
    paths = {}
    for name, module in modules.items():
        path = onnx_path(out_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(module.input_names) + list(module.output_names)
        axes = {n: {0: "batch"} for n in names}
        if name == ENCODER and model.config.visual.pool_tokens:  # pooled: any number of input tokens
            axes.update({n: {0: "batch", 1: "tokens"} for n in module.input_names})
        with warnings.catch_warnings(), _slow_path(model):
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
            torch.onnx.export(
                module, tuple(samples[name][n] for n in module.input_names), str(path), dynamo=False,
                input_names=list(module.input_names), output_names=list(module.output_names),
                dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
            )
        paths[name] = path
    return paths


@torch.no_grad()
def graph_differences(model, model_dir: str | Path, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Max |onnxruntime - torch| per graph output over `batches` of start/goal observations
    (images for image models, else features). Each graph is fed what the torch graphs before
    it computed, so every graph is compared on its own."""
    from planllm_ros.model.graphs import TorchGraphs
    from planllm_ros.runtime.backends.ort_backend import OnnxRuntimeBackend

    model = model.float().eval().cpu()
    reference = TorchGraphs(model)
    onnx = OnnxRuntimeBackend(model_dir, graph_names(model), device="cpu")
    worst: dict[str, float] = {}

    def compare(graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        expected, got = reference.run(graph, inputs), onnx.run(graph, inputs)
        for name, value in expected.items():
            key = f"{graph}.{name}"
            worst[key] = max(worst.get(key, 0.0), float((got[name] - value).abs().max()))
        return expected

    for batch in batches:
        features = batch
        if batch["start"].dtype == torch.uint8:
            tokens = compare(BACKBONE, backbone_inputs(model, batch))["tokens"]
            features = dict(zip(("start", "goal"), tokens.chunk(2)))
        encoded = compare(ENCODER, features)
        if HEADS in onnx.sessions:
            compare(HEADS, heads_inputs(model, encoded))
    onnx.close()
    return worst


def check_parity(model, model_dir: str | Path, batches: Iterable[dict[str, torch.Tensor]],
                 atol: float = PARITY_ATOL) -> dict[str, float]:
    """graph_differences, raising ParityError above `atol`."""
    worst = graph_differences(model, model_dir, batches)
    bad = {k: v for k, v in worst.items() if v > atol}
    if bad:
        raise ParityError(f"ONNX Runtime differs from torch by more than {atol}: {bad}")
    return worst
