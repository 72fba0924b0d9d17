"""The exported graphs of a PlanLLM model: names, inputs and outputs shared by the exporter and
every backend.

The model is cut around the LLM, which runs in torch in every backend:
- "encoder": start, goal features (B, L, C) -> visual_tokens [x0v, xTv(, change)] (B, R*L, H),
  state_tokens (their per-role means, B, R, H), step_tokens x^q (B, T, H): visual projection,
  state interaction, Q-Former (Eq. 1, 4, 5).
- LLM (torch): prompt with the soft tokens -> llm_hidden h (B, T, H) and captions (Eq. 9-10).
- "heads": visual_tokens, step_tokens (, llm_hidden when the model fuses) -> logits (B, T, N):
  step decoder, knowledge fusion, step refiner (Eq. 11-13). The description embeddings are
  constants of this graph. LLM-only models have no heads graph.
Batch is dynamic; the horizon is fixed by the model's T learnable queries.
"""
from __future__ import annotations

import torch
from torch import nn

ENCODER, HEADS = "encoder", "heads"


def graph_names(model) -> tuple[str, ...]:
    """The graphs a model is exported to (and a backend runs)."""
    return (ENCODER,) if model.config.variant.planning == "llm_only" else (ENCODER, HEADS)


class EncoderGraph(nn.Module):
    input_names = ("start", "goal")
    output_names = ("visual_tokens", "state_tokens", "step_tokens")

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, start: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.encode_states(start, goal)


class HeadsGraph(nn.Module):
    output_names = ("logits",)

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.input_names = ("visual_tokens", "step_tokens") + (("llm_hidden",) if model.uses_fusion else ())

    def forward(self, visual_tokens: torch.Tensor, step_tokens: torch.Tensor,
                llm_hidden: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.decode_steps(visual_tokens, step_tokens, llm_hidden)


def graph_modules(model) -> dict[str, nn.Module]:
    """The torch modules of each graph: what the exporter traces and the torch backend runs."""
    modules = {ENCODER: EncoderGraph(model)}
    if HEADS in graph_names(model):
        modules[HEADS] = HeadsGraph(model)
    return {name: module.eval() for name, module in modules.items()}
