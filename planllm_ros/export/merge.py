"""Merge LoRA adapters into the LLM's weights (peft `merge_and_unload`).

A merged LLM is a plain transformers model: it loads without peft, runs without the adapter
matmuls at every layer, and its generation is identical to the adapted one (up to float
rounding), which `merge_lora` checks.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def has_lora(llm: nn.Module) -> bool:
    from peft import PeftModel

    return isinstance(llm, PeftModel) or any("lora_" in name for name, _ in llm.named_parameters())


@torch.no_grad()
def merge_lora(llm: nn.Module, check_tokens: int = 8, atol: float | None = None) -> nn.Module:
    """The LLM with its LoRA adapters folded into the base weights. A model without adapters
    comes back unchanged. Checks that the merged model's logits on a few token ids match the
    adapted model's within `atol` (relative to the logits' scale); by default 1e-4 in float32
    and 8 ulps of the weights' dtype in half precision, where folding B @ A into a rounded
    weight legitimately moves the logits by a few ulps."""
    from peft import PeftModel

    if not isinstance(llm, PeftModel):
        if has_lora(llm):
            raise TypeError("the LLM carries lora_* parameters but is not a peft PeftModel: cannot merge")
        return llm
    if atol is None:
        dtype = next(llm.parameters()).dtype
        atol = 1e-4 if dtype == torch.float32 else 8 * torch.finfo(dtype).eps
    was_training = llm.training
    llm.eval()
    ids = torch.arange(1, check_tokens + 1, device=next(llm.parameters()).device).unsqueeze(0)
    before = llm(input_ids=ids).logits.float()
    merged = llm.merge_and_unload()
    after = merged(input_ids=ids).logits.float()
    diff = float((before - after).abs().max())
    if diff > atol * max(1.0, float(before.abs().max())):
        raise RuntimeError(f"LoRA merge changed the LLM's logits by {diff:.3g} (> {atol})")
    merged.train(was_training)
    return merged


def save_llm(llm: nn.Module, tokenizer, directory: str | Path) -> Path:
    """Save a (merged) LLM with its tokenizer as safetensors, loadable by AutoModelForCausalLM."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    llm.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
