"""Pretraining the built-in tiny LLM on the training plans (llm.builtin.pretrain_steps).

Vicuna arrives knowing language and how procedures go; a randomly initialised stand-in knows
nothing, and LoRA on a random network cannot make up for that. So before stage 1 the tiny
Llama is trained as a plain causal LM on the training split's plans written as sentences
("1. a. 2. b."), one per training sample so that frequent plans weigh more. It is
deterministic (its own RNG stream from builtin.seed), so a resumed run or every DDP rank
rebuilds the very same LLM.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from planllm_ros.model.llm import format_plan


def pretrain_on_plans(model, tokenizer, texts: Sequence[str], steps: int, lr: float, batch_size: int) -> float:
    """Causal-LM training on "<s> 1. a. 2. b.</s>" sentences drawn uniformly from `texts`, seeded
    by the caller's RNG state. Returns the last batch's loss; the model is left in eval mode."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    rows = [bos + tokenizer(" " + t, add_special_tokens=False)["input_ids"] + eos for t in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    loss = torch.zeros(())
    with torch.enable_grad():
        model.requires_grad_(True)
        for _ in range(steps):
            batch = [rows[i] for i in torch.randint(len(rows), (batch_size,)).tolist()]
            width = max(len(r) for r in batch)
            ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in batch])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in batch])
            loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.requires_grad_(False)  # the base LLM is frozen again: only LoRA trains later
    model.eval()
    return float(loss.detach())


def pretrain_builtin_llm(model, train_plans: Sequence[Sequence[int]]) -> float | None:
    """Pretrain `model`'s built-in LLM on `train_plans` (step-id sequences) when the config asks
    for it (llm.builtin.pretrain_steps > 0 and no llm.path); None when nothing was done."""
    llm_config = model.config.llm
    tiny = llm_config.builtin
    if not model.config.variant.use_llm or llm_config.path is not None or tiny.pretrain_steps <= 0:
        return None
    if not train_plans:
        raise ValueError("llm.builtin.pretrain_steps > 0 needs training plans to pretrain on")
    texts = [format_plan([model.step_labels[i] for i in plan]) for plan in train_plans]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        return pretrain_on_plans(model.llm.model, model.llm.tokenizer, texts, tiny.pretrain_steps,
                                 tiny.pretrain_lr, tiny.pretrain_batch_size)
