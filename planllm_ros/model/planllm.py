"""PlanLLM (paper Eq. 1-15) assembled from its parts.

Data flow: start/goal -> VisualStateEncoder (Eq. 1) -> StateInteraction (Eq. 4) -> [x0v, xTv]
-> MIMQFormer (Eq. 5) -> x^q -> LLMBranch (Eq. 9-10) -> h, captions -> StepDecoder (Eq. 11)
-> knowledge fusion (Eq. 12) -> StepRefiner (Eq. 13) -> logits over the N steps.

`forward` is the training pass, one path for every variant. Ground truth (`steps`) is used
only for the losses: the VLM matching pass, the ASC target appended after the prompt (the LLM is
causal, so h cannot see it) and the labels of the cross-entropies. The step logits it returns
depend on start and goal alone, so validation decodes them instead of planning a second time.
Inference is planllm_ros.model.pipeline.plan_batch, the path the robot runs (`predict` calls it
on this model's own modules).
Which parameters train in which stage is the trainer's business (training/train/stages.py); the
model only knows which loss terms its `stage` asks for.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from planllm_ros.model import losses as L
from planllm_ros.model.config import PlanLLMConfig
from planllm_ros.model.folder import (CONFIG_FILE, DESCRIPTIONS_FILE, LABELS_FILE, LLM_DIR, WEIGHTS_FILE,
                                      write_text_atomic)
from planllm_ros.model.heads import CrossAttentionBlock, StateHead, StepDecoder, StepRefiner
from planllm_ros.model.llm import LLMBranch, format_plan
from planllm_ros.model.qformer import MIMQFormer
from planllm_ros.model.state_interaction import StateInteraction, VisualStateEncoder


@dataclass
class PlanLLMOutput:
    """What the training pass computes: the losses, and on the way the tokens and step logits
    that the inference pipeline's decoding reads (validation decodes them)."""

    losses: dict[str, torch.Tensor]  # "total" + the terms of this stage
    logits: torch.Tensor | None  # (B, T, N); None for llm_only planning (its steps come from generated captions)
    state_tokens: torch.Tensor  # (B, R, H)
    step_tokens: torch.Tensor  # (B, T, H)
    states: tuple[torch.Tensor, torch.Tensor] | None = None  # start, goal proposition probabilities (B, P)


@dataclass
class Prediction:
    step_ids: torch.Tensor  # (B, T) int64
    probs: torch.Tensor  # (B, T, N)
    captions: list[list[str]]  # T captions per sample; empty lists without an LLM branch


class PlanLLM(nn.Module):
    """See the module docstring. `step_descriptions`: the texts behind the description
    embeddings (saved with the model; open vocabulary matches captions against them too).
    `llm_dir` (used by from_pretrained) loads the built-in LLM saved with a model instead of
    building a fresh one. `state_embeddings` (P, E): the state propositions' sentence embeddings,
    which the state head's queries read (models with config.states.enabled)."""

    def __init__(self, config: PlanLLMConfig, description_embeddings: torch.Tensor, step_labels: Sequence[str],
                 step_descriptions: Sequence[str] | None = None, llm_dir: str | Path | None = None,
                 state_embeddings: torch.Tensor | None = None):
        super().__init__()
        config = copy.deepcopy(config)
        if config.num_steps == 0:
            config.num_steps = len(step_labels)
        config.validate()
        n, text_dim = config.num_steps, config.text.dim
        if len(step_labels) != n:
            raise ValueError(f"config.num_steps is {n} but {len(step_labels)} step labels were given")
        if tuple(description_embeddings.shape) != (n, text_dim):
            raise ValueError(f"description_embeddings must be ({n}, {text_dim}) (num_steps, text.dim), "
                             f"got {tuple(description_embeddings.shape)}")
        if step_descriptions is not None and len(step_descriptions) != n:
            raise ValueError(f"{len(step_descriptions)} step descriptions for {n} steps")
        self.config = config
        self.step_labels = list(step_labels)
        self.step_descriptions = list(step_descriptions) if step_descriptions is not None else None
        variant, hidden, horizon = config.variant, config.hidden_dim, config.horizon
        self.register_buffer("description_embeddings", description_embeddings.detach().float().clone())
        if config.states.enabled:
            self.add_state_head(state_embeddings)

        self.visual = VisualStateEncoder(config.visual, hidden, config.dropout, config.init_std)
        self.interaction = StateInteraction(hidden, config.heads.num_heads, config.heads.ffn_mult, config.dropout)
        if variant.use_mim:
            self.qformer = MIMQFormer(config.qformer, hidden, horizon, text_dim, config.init_std)
            self.contrast_visual = nn.Linear(hidden, hidden)
            self.contrast_step = nn.Linear(hidden, hidden)
            self.contrast_text = nn.Linear(text_dim, hidden)
        else:  # no MIM: the LLM and the decoder get T learnable step tokens in place of x^q
            self.step_tokens = nn.Parameter(torch.randn(horizon, hidden) * config.init_std)
        if variant.use_llm:
            self.llm = LLMBranch(config.llm, hidden, horizon, self.visual.num_roles, self.step_labels, llm_dir=llm_dir)
        if variant.planning != "llm_only":
            self.step_decoder = StepDecoder(hidden, horizon, config.heads, config.init_std)
            if self.uses_fusion:
                self.knowledge_fusion = CrossAttentionBlock(hidden, config.heads)
            self.step_refiner = StepRefiner(hidden, text_dim, n, config.heads)
        self.stage = 1  # which loss terms forward returns (training/train/stages.py sets it with the trainable parameters)
        self._text_encoder = None
        self._label_embeddings: torch.Tensor | None = None

    def add_state_head(self, state_embeddings: torch.Tensor | None) -> None:
        """Give the model a freshly initialised state head over the propositions whose sentence
        embeddings (P, E) are given, and switch config.states on. The head reads only the frozen
        backbone tokens, so its loss trains it alone: a head fitted onto a finished model is the
        head joint training would give (training.train.state_head)."""
        text_dim = self.config.text.dim
        if state_embeddings is None or state_embeddings.dim() != 2 or state_embeddings.shape[1] != text_dim:
            got = None if state_embeddings is None else tuple(state_embeddings.shape)
            raise ValueError(f"a state head needs state_embeddings (P, {text_dim}), got {got}")
        self.config.states.enabled = True
        device = self.description_embeddings.device
        self.register_buffer("state_embeddings", state_embeddings.detach().float().clone().to(device))
        visual = self.config.visual
        self.state_head = StateHead(visual.feature_dim, 1 if visual.pool_tokens else visual.num_tokens,
                                    self.config.states.hidden_dim, text_dim, self.config.heads,
                                    self.config.init_std).to(device)

    # ----------------------------------------------------------------- switches
    @property
    def uses_fusion(self) -> bool:
        return self.config.variant.use_llm and self.config.variant.planning == "fused"

    @property
    def has_state_head(self) -> bool:
        return self.config.states.enabled

    @property
    def can_rerank(self) -> bool:
        """Whether the model has both an LLM and a step decoder, so the LLM can re-rank Viterbi's plans."""
        return self.config.variant.use_llm and self.config.variant.planning != "llm_only"

    # ----------------------------------------------------------------- forward
    def encode_states(self, start: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The input-only part: visual tokens [x0v, xTv(, change)] (B, R*L, H), their per-role
        means (B, R, H) for the LLM prompt, and the step tokens x^q (B, T, H)."""
        visual_tokens = self.interaction(self.visual(start, goal), self.visual.num_roles)
        state_tokens = self.visual.summarize(visual_tokens)
        if self.config.variant.use_mim:
            return visual_tokens, state_tokens, self.qformer(visual_tokens)
        return visual_tokens, state_tokens, self.step_tokens.unsqueeze(0).expand(visual_tokens.shape[0], -1, -1)

    def read_states(self, observations: torch.Tensor) -> torch.Tensor:
        """Logits (B, P) of the state propositions in each observation (B, L, C) or (B, C)."""
        if self.config.visual.pool_tokens and observations.dim() == 3:
            observations = observations.mean(1)
        return self.state_head(observations, self.state_embeddings)

    def forward(self, start: torch.Tensor, goal: torch.Tensor, steps: torch.Tensor,
                state_labels: tuple[torch.Tensor, torch.Tensor] | None = None) -> PlanLLMOutput:
        """The training pass: the loss terms of `stage` and the step logits (models with a step
        decoder). LLM-only models get no logits here: their steps come from generated captions,
        and greedy generation per batch would dominate training. `state_labels`: start and goal
        labels (B, P) of the state propositions (1 true, 0 false, -1 unknown;
        training.datasets.state_labels) for the state head's loss, in every stage."""
        visual_tokens, state_tokens, step_tokens = self.encode_states(start, goal)
        steps = self._checked_steps(steps, visual_tokens.shape[0])
        losses = self._mim_losses(visual_tokens, step_tokens, steps) if self.config.variant.use_mim else {}
        states = None
        if self.has_state_head:
            logits_start, logits_goal = self.read_states(start), self.read_states(goal)
            states = (torch.sigmoid(logits_start), torch.sigmoid(logits_goal))
            if state_labels is not None:
                losses["state"] = L.state_loss(torch.cat([logits_start, logits_goal]),
                                               torch.cat([state_labels[0], state_labels[1]]).to(logits_start.device))
        train_llm = self.stage == 2
        hidden = None
        if self.config.variant.use_llm and (train_llm or self.uses_fusion):
            targets = [format_plan([self.step_labels[i] for i in row]) for row in steps.tolist()] if train_llm else None
            with torch.set_grad_enabled(torch.is_grad_enabled() and train_llm):
                hidden, asc = self.llm(state_tokens, step_tokens, targets)
            if asc is not None:
                losses["asc"] = asc
        logits = None
        if self.config.variant.planning != "llm_only":
            logits = self.decode_steps(visual_tokens, step_tokens, hidden)
            if train_llm:
                losses["sd"] = L.step_decoding_loss(logits, steps)
        losses["total"] = self._total(losses, visual_tokens)
        return PlanLLMOutput(losses, logits, state_tokens, step_tokens, states)

    def _checked_steps(self, steps: torch.Tensor, batch: int) -> torch.Tensor:
        """Ground-truth step ids (B, T) as int64 on the model's device, or a clear error."""
        steps = steps.to(self.description_embeddings.device).long()
        if steps.shape != (batch, self.config.horizon):
            raise ValueError(f"steps must be (B={batch}, T={self.config.horizon}), got {tuple(steps.shape)}")
        if steps.min() < 0 or steps.max() >= self.config.num_steps:
            raise ValueError(f"step ids must lie in [0, {self.config.num_steps}), got "
                             f"{int(steps.min())}..{int(steps.max())}")
        return steps

    def decode_steps(self, visual_tokens, step_tokens, hidden) -> torch.Tensor:
        """Eq. 11-13: step decoder, knowledge fusion (fused planning only), step refiner."""
        steps = self.step_decoder(torch.cat([visual_tokens, step_tokens], dim=1))
        if self.uses_fusion:
            steps = self.knowledge_fusion(steps, hidden)
        return self.step_refiner(steps, self.description_embeddings)

    def _mim_losses(self, visual_tokens, step_tokens, steps) -> dict[str, torch.Tensor]:
        """L_VLC and L_VLM (Eq. 6-7; the choices are documented in losses.py)."""
        temperature = self.config.loss.temperature
        positives = L.same_plan_mask(steps)
        z_visual = F.normalize(self.contrast_visual(visual_tokens.mean(1)), dim=-1)
        z_steps = F.normalize(self.contrast_step(step_tokens), dim=-1)  # (B, T, C)
        z_text = F.normalize(self.contrast_text(self.description_embeddings), dim=-1)  # (N, C)
        z_plan_text = F.normalize(z_text[steps].mean(1), dim=-1)  # (B, C): sample k's ground-truth steps
        vlc = (L.contrastive_loss(z_visual, z_plan_text, positives, temperature)
               + L.step_text_alignment_loss(z_steps, z_text, steps, temperature))
        # similarity of sample j's step embeddings to sample k's ground-truth step texts
        similarity = torch.einsum("jtc,ktc->jk", z_steps, z_text[steps]) / steps.shape[1]
        text_for_visual, visual_for_text = L.mine_hard_negatives(similarity, positives)
        batch = torch.arange(steps.shape[0], device=steps.device)
        keep_v, keep_t = text_for_visual >= 0, visual_for_text >= 0
        visual_index = torch.cat([batch, batch[keep_v], visual_for_text[keep_t]])
        text_index = torch.cat([batch, text_for_visual[keep_v], batch[keep_t]])
        logits = self.qformer.match_logits(visual_tokens[visual_index], self.description_embeddings[steps[text_index]])
        vlm = L.matching_loss(logits, positives[visual_index, text_index])
        return {"vlc": vlc, "vlm": vlm, "mim": vlc + vlm}

    def _total(self, losses: dict[str, torch.Tensor], anchor: torch.Tensor) -> torch.Tensor:
        """Eq. 15's weighted sum; zero (on `anchor`'s device) when this stage has no term."""
        weights = self.config.loss
        terms = [weights.vlc * losses["vlc"], weights.vlm * losses["vlm"]] if "vlc" in losses else []
        terms += [getattr(weights, k) * losses[k] for k in ("asc", "sd", "state") if k in losses]
        return torch.stack(terms).sum() if terms else anchor.new_zeros(())

    # ----------------------------------------------------------------- inference
    def attach_text_encoder(self, encoder) -> None:
        """Share an already loaded TextEncoder (e.g. the one open-vocabulary retrieval uses)
        instead of loading a second copy; it must produce config.text.dim vectors."""
        if encoder.dim != self.config.text.dim:
            raise ValueError(f"text encoder gives {encoder.dim}-d vectors, config.text.dim is {self.config.text.dim}")
        self._text_encoder = encoder
        self._label_embeddings = None

    def text_encoder(self):
        """The frozen text encoder E_l named by config.text (built on first use)."""
        if self._text_encoder is None:
            from planllm_ros.model.text_encoder import TextEncoder

            text = self.config.text
            self._text_encoder = TextEncoder(text.encoder, text.checkpoint, text.open_clip_model)
        return self._text_encoder

    def caption_logits(self, captions: list[list[str]]) -> torch.Tensor:
        """LLM-only planning: cosine similarity of each caption to each step label / temperature."""
        encoder = self.text_encoder()
        if self._label_embeddings is None:
            self._label_embeddings = encoder.encode(self.step_labels)
        flat = [c for row in captions for c in row]
        similarity = encoder.encode(flat) @ self._label_embeddings.t()
        logits = similarity / self.config.loss.temperature
        return logits.view(len(captions), self.config.horizon, -1).to(self.description_embeddings.device)

    @torch.no_grad()
    def predict(self, start: torch.Tensor, goal: torch.Tensor, transition=None, decode: str = "viterbi",
                captions: bool = True) -> Prediction:
        """Closed-set step ids (Viterbi with the train transition matrix, or argmax; Viterbi
        without a transition matrix is argmax), probabilities and the LLM's captions: the
        inference pipeline (planllm_ros.model.pipeline) on this model's own modules. Takes start
        and goal only: nothing about the ground truth can reach it."""
        from planllm_ros.model.decoding import DecodingPolicy
        from planllm_ros.model.graphs import TorchGraphs
        from planllm_ros.model.pipeline import plan_batch

        was_training = self.training
        try:
            out = plan_batch(self, TorchGraphs(self), start, goal,
                             DecodingPolicy.for_model(self, transition, method=decode, captions=captions))
        finally:
            self.train(was_training)
        return Prediction(step_ids=torch.as_tensor(out.step_ids), probs=out.probs, captions=out.captions)

    # ----------------------------------------------------------------- checkpoints
    @staticmethod
    def _is_frozen_pretrained(key: str) -> bool:
        return key.startswith("visual.backbone.") or (key.startswith("llm.model.") and "lora_" not in key)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything a checkpoint stores: all weights and buffers except the frozen
        pretrained backbone and base LLM (LoRA adapters included once applied)."""
        return {k: v for k, v in self.state_dict().items() if not self._is_frozen_pretrained(k)}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of trainable_state_dict. LoRA adapters in `state` switch LoRA on first;
        a checkpoint without adapters (stage 1) leaves freshly initialised ones alone."""
        has_lora = any("lora_" in k for k in state)
        if has_lora and not (self.config.variant.use_llm and self.llm.lora_applied):
            if not self.config.variant.use_llm:
                raise ValueError("state dict has LoRA weights but this model has no LLM branch")
            self.llm.apply_lora()  # adapters exist only in stage 2
            self.stage = 2
        expected = set(self.trainable_state_dict())
        missing = sorted(k for k in expected - set(state) if has_lora or "lora_" not in k)
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise KeyError(f"state dict does not fit this model: missing {missing[:8]}, unexpected {unexpected[:8]}")
        self.load_state_dict(state, strict=False)

    def save_pretrained(self, directory: str | Path) -> None:
        """config.json, step_labels.json (+ step_descriptions.json), model.safetensors (+ llm/
        for the built-in LLM: its base weights and tokenizer). A path LLM is referenced by
        config.llm.path, not copied. The layout: planllm_ros.model.folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_text_atomic(directory / CONFIG_FILE, json.dumps(self.config.to_dict(), indent=2))
        write_text_atomic(directory / LABELS_FILE, json.dumps(self.step_labels, indent=2))
        if self.step_descriptions is not None:
            write_text_atomic(directory / DESCRIPTIONS_FILE, json.dumps(self.step_descriptions, indent=2))
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.trainable_state_dict().items()}
        tmp = directory / (WEIGHTS_FILE + ".tmp")
        save_file(tensors, str(tmp), metadata={"stage": str(self.stage)})
        os.replace(tmp, directory / WEIGHTS_FILE)
        if self.config.variant.use_llm and self.config.llm.path is None:
            self.llm.save_base(directory / LLM_DIR)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "PlanLLM":
        directory = Path(directory)
        for name in (CONFIG_FILE, LABELS_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory} is not a saved PlanLLM model: {name} is missing")
        config = PlanLLMConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text()))
        labels = json.loads((directory / LABELS_FILE).read_text())
        descriptions = (json.loads((directory / DESCRIPTIONS_FILE).read_text())
                        if (directory / DESCRIPTIONS_FILE).is_file() else None)
        with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
            state = {k: handle.get_tensor(k) for k in handle.keys()}
            stage = int((handle.metadata() or {}).get("stage", "1"))
        llm_dir = directory / LLM_DIR if config.variant.use_llm and config.llm.path is None else None
        model = cls(config, state["description_embeddings"], labels, descriptions, llm_dir=llm_dir,
                    state_embeddings=state.get("state_embeddings"))
        model.load_trainable_state_dict(state)  # LoRA adapters in the weights switch LoRA on
        model.stage = stage
        return model.to(device).eval()

