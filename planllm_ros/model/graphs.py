"""The graphs a PlanLLM model is cut into: names, inputs and outputs shared by the exporter,
every runtime backend and the inference pipeline (planllm_ros.model.pipeline).

The model is cut around the LLM, which runs in torch in every backend:
- "backbone" (models that take images): normalised images (B, 3, S, S) -> tokens (B, L, C), the
  frozen backbone's map at block visual.layer. Preprocessing (resize, normalise) stays in torch.
- "encoder": start, goal features (B, L, C) -> visual_tokens [x0v, xTv(, change)] (B, R*L, H),
  state_tokens (their per-role means, B, R, H), step_tokens x^q (B, T, H): visual projection,
  state interaction, Q-Former (Eq. 1, 4, 5); models with a state head add start_states and
  goal_states (B, P), the probability of each state proposition in each image.
- LLM (torch): prompt with the soft tokens -> llm_hidden h (B, T, H) and captions (Eq. 9-10).
- "heads": visual_tokens, step_tokens (, llm_hidden when the model fuses) -> logits (B, T, N):
  step decoder, knowledge fusion, step refiner (Eq. 11-13). The description embeddings are
  constants of this graph. LLM-only models have no heads graph.
Batch is dynamic; the horizon is fixed by the model's T learnable queries.

`TorchGraphs` runs the model's own modules under these names; runtime backends run the same
names from exported ONNX files or TensorRT engines.
"""
from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from planllm_ros.model.backbone import BACKBONES

BACKBONE, ENCODER, HEADS = "backbone", "encoder", "heads"


class GraphRunner(Protocol):
    """Anything that runs the named graphs: float32 tensors in, float32 tensors out."""

    def run(self, graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...


def takes_images(model) -> bool:
    """Whether the model records a backbone that this package can build and export."""
    return model.config.visual.backbone in BACKBONES


def graph_names(model) -> tuple[str, ...]:
    """The graphs a model is exported to (and a backend runs)."""
    names = (BACKBONE,) if takes_images(model) else ()
    return names + ((ENCODER,) if model.config.variant.planning == "llm_only" else (ENCODER, HEADS))


class BackboneGraph(nn.Module):
    input_names = ("images",)
    output_names = ("tokens",)

    def __init__(self, model):
        super().__init__()
        self.net = model.visual.image_backbone().net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class EncoderGraph(nn.Module):
    input_names = ("start", "goal")

    def __init__(self, model):
        super().__init__()
        self.model = model
        states = ("start_states", "goal_states") if model.has_state_head else ()
        self.output_names = ("visual_tokens", "state_tokens", "step_tokens") + states

    def forward(self, start: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoded = self.model.encode_states(start, goal)
        if not self.model.has_state_head:
            return encoded
        return encoded + (torch.sigmoid(self.model.read_states(start)), torch.sigmoid(self.model.read_states(goal)))


class HeadsGraph(nn.Module):
    output_names = ("logits",)

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.input_names = ("visual_tokens", "step_tokens") + (("llm_hidden",) if model.uses_fusion else ())

    def forward(self, visual_tokens: torch.Tensor, step_tokens: torch.Tensor,
                llm_hidden: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.decode_steps(visual_tokens, step_tokens, llm_hidden)


def graph_modules(model, names: tuple[str, ...] | None = None) -> dict[str, nn.Module]:
    """The torch modules of each graph: what the exporter traces and TorchGraphs runs."""
    builders = {BACKBONE: BackboneGraph, ENCODER: EncoderGraph, HEADS: HeadsGraph}
    return {name: builders[name](model).eval() for name in (names or graph_names(model))}


class TorchGraphs:
    """The reference runner: the model's own modules, on the model's device. The backbone graph
    is built on first use, so a model that only ever sees features never loads its weights."""

    def __init__(self, model):
        self.model = model
        self.modules: dict[str, nn.Module] = {}

    @property
    def device(self) -> torch.device:
        return self.model.description_embeddings.device

    @torch.no_grad()
    def run(self, graph: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if graph not in self.modules:
            self.modules.update(graph_modules(self.model, (graph,)))
        module = self.modules[graph]
        outputs = module(*(inputs[name].to(self.device) for name in module.input_names))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return {name: out.float() for name, out in zip(module.output_names, outputs)}
