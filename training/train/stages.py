"""Which parameters train in which stage (paper Eq. 15, progressive training), and how a stage
optimises them.

Stage 1 freezes the LLM and both backbones and trains the visual encoder, the state
interaction and the MIM parts with L_MIM only (and a state head, where the model has one, with
its own loss: it reads only the frozen backbone tokens, so nothing else sees its gradient). Stage 2 adds LoRA on the LLM (when the variant
trains it) and trains everything else with L_MIM + L_ASC + L_SD. The one-stage variant runs
stage 2 from the start. Afterwards requires_grad is True exactly on the parameters the
stage's losses reach, so an optimizer over them needs no unused-parameter handling (DDP too).

The optimiser of a stage, the autocast and GradScaler of a precision and one optimiser step
live here, beside the freeze policy, so that the trainer and the GPU benchmark
(training/benchmarks/gpu.py, which must import no more than this) run the same code.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from training.train.config import StageConfig

STAGE1_PREFIXES = ("visual.", "interaction.", "qformer.", "contrast_", "state_head.")


def trained_in(model, name: str, stage: int) -> bool:
    """Whether parameter `name` of `model` trains in `stage`."""
    if name.startswith("visual.backbone."):
        return False
    if name.startswith("llm.model."):
        return stage == 2 and "lora_" in name
    if stage == 1:  # L_MIM reaches the visual encoder, state interaction and MIM parts only
        return name.startswith(STAGE1_PREFIXES)
    if name.startswith("llm.hidden_out."):
        return model.uses_fusion  # h feeds only knowledge fusion
    return True


def set_stage(model, stage: int) -> None:
    """Switch `model` to `stage`: LoRA on for stage 2 (when the LLM trains), the stage's loss
    terms on (model.stage) and requires_grad on exactly its parameters."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    variant = model.config.variant
    if stage == 1 and not variant.use_mim:
        raise ValueError("stage 1 trains only L_MIM, and variant.use_mim is false: "
                         "nothing to train; start this variant at stage 2")
    if stage == 2 and variant.use_llm and variant.llm_trainable and not model.llm.lora_applied:
        model.llm.apply_lora()
    for name, param in model.named_parameters():
        param.requires_grad_(trained_in(model, name, stage))
    model.stage = stage


def _param_groups(model: torch.nn.Module, stage: StageConfig) -> list[dict[str, Any]]:
    """One group per `lr_overrides` entry (first matching name substring wins) plus the rest."""
    groups: dict[str, list[torch.nn.Parameter]] = {key: [] for key in stage.lr_overrides}
    rest: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = next((k for k in stage.lr_overrides if k in name), None)
        (groups[key] if key is not None else rest).append(param)
    out = [{"params": params, "lr": float(stage.lr_overrides[key])} for key, params in groups.items() if params]
    if rest:
        out.append({"params": rest, "lr": float(stage.lr)})
    if not out:
        raise RuntimeError("no trainable parameters in this stage: check the variant switches")
    return out


def stage_optimizer(model: torch.nn.Module, stage: StageConfig) -> torch.optim.AdamW:
    """AdamW over the parameters that require a gradient, with the stage's learning rates
    (per-parameter-name through `lr_overrides`) and weight decay."""
    return torch.optim.AdamW(_param_groups(model, stage), weight_decay=stage.weight_decay)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bf16/fp16 autocast on CUDA; nothing for fp32 or on the CPU (which always trains in fp32)."""
    if device.type != "cuda" or precision == "fp32":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """The loss scaler fp16 autocast needs; a disabled one (every call passes through) otherwise."""
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and precision == "fp16")


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                   parameters: list[torch.nn.Parameter], max_grad_norm: float) -> None:
    """One optimiser step after the (scaled, accumulated) backward passes: unscale, clip the
    gradient norm (max_grad_norm > 0), step (the scaler skips it on inf/nan gradients), update
    the scale and clear the gradients."""
    scaler.unscale_(optimizer)
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
