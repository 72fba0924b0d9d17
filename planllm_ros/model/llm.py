"""LLM branch (Eq. 9-10): a causal LM reads the visual and step tokens, gives h_1..T and captions.

The LLM is any `AutoModelForCausalLM` + tokenizer in a local directory (Vicuna-7B in
production), or the built-in tiny Llama with a BPE tokenizer trained on the step labels. Its
own weights are frozen; stage 2 adds LoRA (peft) when the variant trains the LLM.

Prompt (soft tokens in angle brackets, projected into the LLM's embedding space):
    <s>Start: <x0v> Goal: <xTv> Change: <dv> Steps: <x^q_1> ... <x^q_T> Plan:
where <x0v>, <xTv> and <dv> are the mean start, goal and change tokens of the state interaction
(" Change:" only for models with change tokens). As in BLIP-2, the LLM reads the image through
the Q-Former's T step tokens; the three summaries tell it what the two states look like. h_t is the LLM's last hidden state at the position of <x^q_t>. Training appends the ground
truth written as one sentence, " 1. slice the tomato. 2. add salt.</s>", and L_ASC is the LM
loss on those tokens only. The LM is causal, so h (taken inside the prompt) never sees the
appended ground truth: training and inference compute h identically.
"""
from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from planllm_ros.model.config import LLMConfig, LoRAConfig
from planllm_ros.model.tokenizer import train_bpe_tokenizer

ROLE_SEGMENTS = ("Start:", " Goal:", " Change:")  # one per state token role, in VisualStateEncoder's order
PROMPT_SEGMENTS = (*ROLE_SEGMENTS, " Steps:", " Plan:")
_NUMBERED = re.compile(r"(?:^|\s)\d+\s*[.)](?:\s+|$)")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class PromptState:
    """What one pass over the prompt leaves: h (B, T, hidden_dim), the KV cache, next-token
    logits. Its users copy the cache before extending it, so one read serves them all."""

    hidden: torch.Tensor
    cache: object
    next_logits: torch.Tensor


def format_plan(labels: Sequence[str]) -> str:
    """["slice the tomato", "add salt"] -> "1. slice the tomato. 2. add salt." (the ASC target)."""
    return " ".join(f"{i + 1}. {label.strip().rstrip('.')}." for i, label in enumerate(labels))


def parse_plan(text: str, horizon: int) -> list[str]:
    """The inverse of format_plan, robust to what a model emits: exactly `horizon` captions,
    "" where the text has fewer numbered items (extra items are dropped)."""
    parts = [p.strip().rstrip(".").strip() for p in _NUMBERED.split(" " + text.strip())]
    parts = [p for p in parts if p]
    return (parts + [""] * horizon)[:horizon]


def _builtin_corpus(step_labels: Sequence[str], horizon: int) -> list[str]:
    """What the tiny tokenizer is trained on: the labels, the prompt words, numbered plans."""
    plans = [format_plan(step_labels[i:i + horizon]) for i in range(0, len(step_labels), horizon)]
    return ["".join(PROMPT_SEGMENTS), *step_labels, *plans]


def build_builtin_llm(config: LLMConfig, step_labels: Sequence[str], horizon: int):
    """The tiny Llama (randomly initialised from builtin.seed) and its tokenizer, deterministic
    for a given config and label list. The trainer then pretrains it on the training plans
    (training/train/llm_pretrain.py) when builtin.pretrain_steps > 0."""
    tiny = config.builtin
    tokenizer = train_bpe_tokenizer(_builtin_corpus(step_labels, horizon), tiny.vocab_size)
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=tiny.hidden_size, intermediate_size=tiny.intermediate_size,
        num_hidden_layers=tiny.num_layers, num_attention_heads=tiny.num_heads, num_key_value_heads=tiny.num_heads,
        max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,  # LoRA on lm_head must not move the input embeddings when merged
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.seed)
        model = LlamaForCausalLM(llama_config)
    return model.eval(), tokenizer


def add_lora(model: PreTrainedModel, lora: LoRAConfig) -> nn.Module:
    """`model` wrapped with `lora`'s adapters (peft), only they train: what stage 2 adds to the
    LLM, and what the GPU benchmark adds to its 7B-shaped LLM, so it measures this set-up."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM",
    ))


def load_local_llm(path: str | Path, dtype: str):
    """Any causal LM + tokenizer from a local directory (never the hub)."""
    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"LLM directory {directory} has no config.json (expected a saved causal LM)")
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=_DTYPES[dtype], local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer


class LLMBranch(nn.Module):
    """Projection into the LLM, the prompt with soft tokens, h_1..T, L_ASC and captions."""

    def __init__(self, config: LLMConfig, hidden_dim: int, horizon: int, num_roles: int, step_labels: Sequence[str],
                 llm_dir: str | Path | None = None):
        super().__init__()
        self.config = config
        self.horizon = horizon
        self.num_roles = num_roles
        source = llm_dir or config.path
        if source is not None:
            self.model, self.tokenizer = load_local_llm(source, config.dtype)
        else:
            self.model, self.tokenizer = build_builtin_llm(config, step_labels, horizon)
        self.model.requires_grad_(False)
        self.lora_applied = False
        width = self.model.get_input_embeddings().embedding_dim
        self.projection = nn.Linear(hidden_dim, width)  # state summaries and x^q -> LLM input space
        self.hidden_out = nn.Linear(width, hidden_dim)  # h -> the heads' width
        segments = (*ROLE_SEGMENTS[:num_roles], " Steps:", " Plan:")
        self._segments = [self.tokenizer(s, add_special_tokens=False)["input_ids"] for s in segments]
        self._bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        # one soft token after each role segment, then the T step tokens after " Steps:"
        first_step = len(self._bos) + sum(len(s) + 1 for s in self._segments[:num_roles]) + len(self._segments[num_roles])
        self.step_positions = list(range(first_step, first_step + horizon))

    def apply_lora(self) -> None:
        """Wrap the LLM with LoRA adapters (peft); only the adapters train."""
        self.model = add_lora(self.model, self.config.lora)
        self.lora_applied = True

    def base_model(self) -> PreTrainedModel:
        """The underlying transformers model (LoRA layers included once applied)."""
        return self.model.get_base_model() if self.lora_applied else self.model

    def _embed_ids(self, ids: Sequence[int], batch: int) -> torch.Tensor:
        embedding = self.model.get_input_embeddings()
        tensor = torch.tensor(list(ids), dtype=torch.long, device=embedding.weight.device)
        return embedding(tensor).unsqueeze(0).expand(batch, -1, -1)

    def prompt_embeddings(self, state_tokens: torch.Tensor, step_tokens: torch.Tensor) -> torch.Tensor:
        """(B, R, H) state summaries, (B, T, H) step tokens -> inputs_embeds (B, P, d) of the prompt."""
        batch, roles = state_tokens.shape[:2]
        if roles != self.num_roles:
            raise ValueError(f"expected {self.num_roles} state tokens per sample, got {roles}")
        dtype = self.model.get_input_embeddings().weight.dtype
        soft = self.projection(torch.cat([state_tokens, step_tokens], dim=1)).to(dtype)
        seg = [self._embed_ids(s, batch) for s in self._segments]
        parts = [self._embed_ids(self._bos, batch)]
        for role in range(roles):
            parts += [seg[role], soft[:, role:role + 1]]
        parts += [seg[roles], soft[:, roles:], seg[roles + 1]]
        return torch.cat(parts, dim=1)

    def forward(self, state_tokens: torch.Tensor, step_tokens: torch.Tensor,
                targets: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h_1..T (B, T, hidden_dim) and, with `targets` (one formatted plan per sample), L_ASC."""
        prompt = self.prompt_embeddings(state_tokens, step_tokens)
        batch, prompt_len = prompt.shape[:2]
        inputs, mask, labels = prompt, torch.ones(batch, prompt_len, dtype=torch.long, device=prompt.device), None
        if targets is not None:
            inputs, mask, labels = self._append_targets(prompt, targets)
        out = self.model(inputs_embeds=inputs, attention_mask=mask, labels=labels, output_hidden_states=True)
        return self._step_hidden(out.hidden_states), (out.loss.float() if labels is not None else None)

    def _step_hidden(self, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """h (B, T, hidden_dim): the last layer's states at the step tokens' positions. The one
        place h is made, for training (`forward`) and inference (`read_prompt`) alike."""
        return self.hidden_out(hidden_states[-1][:, self.step_positions].float())

    @torch.no_grad()
    def plan_log_likelihood(self, state_tokens: torch.Tensor, step_tokens: torch.Tensor,
                            plans: Sequence[Sequence[str]], prompt: PromptState | None = None) -> torch.Tensor:
        """log p(plan sentence | prompt) summed over its tokens, for K candidate plans (each a
        list of T step texts) of every sample: (B, K). What ASC trains the LLM to make large
        for the true plan; the pipeline uses it to re-rank closed-set candidates. With `prompt`
        (read_prompt's state, left unchanged) only the plans' tokens are run, after a copy of
        its KV cache."""
        batch, k = state_tokens.shape[0], len(plans) // state_tokens.shape[0]
        if k * batch != len(plans) or k == 0:
            raise ValueError(f"expected K plans per sample for {batch} samples, got {len(plans)} plans")
        if prompt is not None:
            return self._continuation_log_likelihood(prompt, [format_plan(plan) for plan in plans], k).view(batch, k)
        prompt = self.prompt_embeddings(state_tokens, step_tokens).repeat_interleave(k, dim=0)
        inputs, mask, labels = self._append_targets(prompt, [format_plan(plan) for plan in plans])
        logits = self.model(inputs_embeds=inputs, attention_mask=mask).logits[:, :-1].float()
        targets = labels[:, 1:]
        token_ll = logits.log_softmax(-1).gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        return (token_ll * (targets != -100)).sum(1).view(batch, k)

    def _continuation_log_likelihood(self, prompt: PromptState, targets: Sequence[str], k: int) -> torch.Tensor:
        """Summed log-probabilities of each target's tokens (" <plan></s>") continuing the read
        prompt, K targets per prompt: (B*K,)."""
        cache = copy.deepcopy(prompt.cache)
        cache.batch_repeat_interleave(k)
        ids, mask = self._target_ids(targets, prompt.next_logits.device)
        past = torch.ones(ids.shape[0], cache.get_seq_length(), dtype=torch.long, device=ids.device)
        logits = self.model(input_ids=ids, attention_mask=torch.cat([past, mask], dim=1), past_key_values=cache).logits
        logits = torch.cat([prompt.next_logits.repeat_interleave(k, dim=0)[:, None], logits[:, :-1]], dim=1).float()
        token_ll = logits.log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        return (token_ll * mask).sum(1)

    def _append_targets(self, prompt: torch.Tensor, targets: Sequence[str]):
        """inputs_embeds, attention mask and LM labels of prompt + " <plan></s>" (labels only on the plan)."""
        batch, prompt_len = prompt.shape[:2]
        ids, target_mask = self._target_ids(targets, prompt.device)
        inputs = torch.cat([prompt, self.model.get_input_embeddings()(ids).to(prompt.dtype)], dim=1)
        mask = torch.cat([torch.ones(batch, prompt_len, dtype=torch.long, device=prompt.device), target_mask], dim=1)
        labels = torch.cat([torch.full((batch, prompt_len), -100, device=prompt.device, dtype=torch.long),
                            ids.masked_fill(target_mask == 0, -100)], dim=1)
        return inputs, mask, labels

    def _target_row(self, target: str) -> list[int]:
        """Token ids of " <plan></s>": what L_ASC teaches and `generate_captions` must write."""
        eos = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        return self.tokenizer(" " + target, add_special_tokens=False)["input_ids"] + eos

    def check_caption_budget(self, plans: Iterable[Sequence[str]]) -> int:
        """Warn if `max_new_tokens` cannot write the longest of these plans in full (a cut
        caption loses its last steps, which ruins open-vocabulary planning; closed-set planning
        does not need captions, so quick runs may cut them on purpose). Returns that length."""
        longest = max((len(self._target_row(format_plan(plan))) for plan in plans), default=0)
        if longest > self.config.max_new_tokens:
            warnings.warn(f"llm.max_new_tokens={self.config.max_new_tokens} cuts captions: the longest training plan "
                          f"takes {longest} tokens with this tokenizer; set llm.max_new_tokens >= {longest} for "
                          "complete free-form plans", stacklevel=2)
        return longest

    def _target_ids(self, targets: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded token ids of " <plan></s>" and their attention mask."""
        rows = [self._target_row(t) for t in targets]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long, device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long, device=device)
        return ids, mask

    @torch.no_grad()
    def read_prompt(self, state_tokens: torch.Tensor, step_tokens: torch.Tensor) -> PromptState:
        """One pass over the prompt: h (for knowledge fusion) and the KV cache and next-token
        logits that caption generation continues from, so the prompt is read once per plan."""
        prompt = self.prompt_embeddings(state_tokens, step_tokens)
        out = self.model(inputs_embeds=prompt, use_cache=True, output_hidden_states=True)
        return PromptState(self._step_hidden(out.hidden_states), out.past_key_values, out.logits[:, -1])

    @torch.no_grad()
    def generate_captions(self, state_tokens: torch.Tensor, step_tokens: torch.Tensor,
                          prompt: PromptState | None = None, num_beams: int = 1) -> list[list[str]]:
        """The free-form plan O (Eq. 10), parsed into T captions per sample. Greedy decoding
        continues from `prompt` (a copy of read_prompt's KV cache; read afresh when None) one
        token at a time; beam search (num_beams > 1) goes through transformers' generate."""
        if num_beams > 1:
            embeds = self.prompt_embeddings(state_tokens, step_tokens)
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
            tokens = self.model.generate(
                inputs_embeds=embeds, attention_mask=mask, max_new_tokens=self.config.max_new_tokens,
                do_sample=False, num_beams=num_beams, pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        else:
            tokens = self._greedy(prompt or self.read_prompt(state_tokens, step_tokens))
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [parse_plan(text, self.horizon) for text in texts]

    def _greedy(self, prompt: PromptState) -> torch.Tensor:
        """Greedy tokens (B, <= max_new_tokens) from a read prompt, padded after each row's </s>.
        Every prompt of a batch has the same length (the same words around the soft tokens),
        so no attention mask is needed."""
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        logits, cache = prompt.next_logits, copy.deepcopy(prompt.cache)  # the prompt's cache serves re-ranking too
        finished = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
        tokens = []
        for _ in range(self.config.max_new_tokens):
            token = logits.argmax(-1).masked_fill(finished, pad)
            tokens.append(token)
            finished |= token == eos
            if bool(finished.all()):
                break
            out = self.model(input_ids=token[:, None], past_key_values=cache, use_cache=True)
            logits, cache = out.logits[:, -1], out.past_key_values
        return torch.stack(tokens, dim=1)

    def save_base(self, directory: Path) -> None:
        """Write the frozen base LLM (without LoRA) and its tokenizer as a loadable directory."""
        base = self.base_model()
        state = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k}
        base.save_pretrained(str(directory), state_dict=state, safe_serialization=True)
        self.tokenizer.save_pretrained(str(directory))
