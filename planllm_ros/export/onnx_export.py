"""Export a PlanLLM model's graphs (planllm_ros.runtime.graphs) to ONNX and check ONNX Runtime
against torch.

The legacy TorchScript exporter is used (`dynamo=False`): it needs no extra package and traces
these modules (Blip2QFormerModel, nn.MultiheadAttention, nn.TransformerEncoderLayer) with a
dynamic batch dimension. The horizon is fixed by the model's T learnable queries.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import torch

from planllm_ros.runtime.backends.base import ONNX_DIR
from planllm_ros.runtime.graphs import ENCODER, HEADS, graph_modules

OPSET = 17
PARITY_ATOL = 1e-4


class ParityError(RuntimeError):
    """ONNX Runtime and torch disagree by more than the tolerance."""


def encoder_inputs(model, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random features shaped like the encoder graph's inputs: (batch, L, C) token sets."""
    visual = model.config.visual
    return {name: torch.randn(batch, visual.num_tokens, visual.feature_dim, generator=generator)
            for name in ("start", "goal")}


@torch.no_grad()
def heads_inputs(model, encoder_out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the heads graph reads: the encoder's outputs plus, for fused models, the LLM's h."""
    inputs = dict(encoder_out)
    if model.uses_fusion:
        inputs["llm_hidden"], _ = model.llm(inputs["state_tokens"], inputs["step_tokens"])
        inputs["llm_hidden"] = inputs["llm_hidden"].float()
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
    onnx_dir = Path(out_dir) / ONNX_DIR
    onnx_dir.mkdir(parents=True, exist_ok=True)
    modules = graph_modules(model)
    sample = encoder_inputs(model, batch=2, generator=torch.Generator().manual_seed(0))
    encoder = modules[ENCODER]
    with torch.no_grad():
        encoder_out = dict(zip(encoder.output_names, encoder(**sample)))
    samples = {ENCODER: sample}
    if HEADS in modules:
        samples[HEADS] = {k: v for k, v in heads_inputs(model, encoder_out).items() if k in modules[HEADS].input_names}
    paths = {}
    for name, module in modules.items():
        path = onnx_dir / f"{name}.onnx"
        inputs = samples[name]
        names = list(module.input_names) + list(module.output_names)
        axes = {n: {0: "batch"} for n in names}
        if name == ENCODER and model.config.visual.pool_tokens:  # pooled: any number of input tokens
            axes.update({n: {0: "batch", 1: "tokens"} for n in module.input_names})
        with warnings.catch_warnings(), _slow_path(model):
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
            torch.onnx.export(
                module, tuple(inputs[n] for n in module.input_names), str(path), dynamo=False,
                input_names=list(module.input_names), output_names=list(module.output_names),
                dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
            )
        paths[name] = path
    return paths


@torch.no_grad()
def check_parity(model, model_dir: str | Path, batches: Iterable[dict[str, torch.Tensor]],
                 atol: float = PARITY_ATOL) -> dict[str, float]:
    """Max |onnxruntime - torch| per graph output over `batches` of encoder inputs (start, goal
    features); each batch's heads inputs come from the torch encoder and LLM. Raises
    ParityError above `atol`."""
    from planllm_ros.runtime.backends.ort_backend import OnnxRuntimeBackend
    from planllm_ros.runtime.backends.torch_backend import TorchBackend
    from planllm_ros.runtime.graphs import graph_names

    model = model.float().eval().cpu()
    reference = TorchBackend(model)
    onnx = OnnxRuntimeBackend(model_dir, graph_names(model), device="cpu")
    worst: dict[str, float] = {}
    for batch in batches:
        runs = {ENCODER: batch}
        expected = {ENCODER: reference.run(ENCODER, batch)}
        if HEADS in onnx.sessions:
            runs[HEADS] = heads_inputs(model, expected[ENCODER])
            expected[HEADS] = reference.run(HEADS, runs[HEADS])
        for graph, inputs in runs.items():
            got = onnx.run(graph, inputs)
            for name, value in expected[graph].items():
                diff = float((got[name] - value).abs().max())
                key = f"{graph}.{name}"
                worst[key] = max(worst.get(key, 0.0), diff)
    onnx.close()
    bad = {k: v for k, v in worst.items() if v > atol}
    if bad:
        raise ParityError(f"ONNX Runtime differs from torch by more than {atol}: {bad}")
    return worst
