"""Which parameters train in which stage (paper Eq. 15, progressive training).

Stage 1 freezes the LLM and both backbones and trains the visual encoder, the state
interaction and the MIM parts with L_MIM only. Stage 2 adds LoRA on the LLM (when the variant
trains it) and trains everything else with L_MIM + L_ASC + L_SD. The one-stage variant runs
stage 2 from the start. Afterwards requires_grad is True exactly on the parameters the
stage's losses reach, so an optimizer over them needs no unused-parameter handling (DDP too).
"""
from __future__ import annotations

STAGE1_PREFIXES = ("visual.", "interaction.", "qformer.", "contrast_")


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
