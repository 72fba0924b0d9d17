"""MIM Q-Former (Eq. 5): T learnable step queries read the visual tokens of start, goal and change.

`transformers.Blip2QFormerModel` does the work, used the way BLIP-2 uses it:
- unimodal pass (training and inference): only the T queries go in; they self-attend and
  cross-attend to the visual tokens [x0v, xTv(, change)] -> x^q_1..T. Nothing from the ground truth
  enters this pass, so it is the only one run at inference.
- matching pass (training only, the VLM loss): the queries are concatenated with T "text"
  tokens, the ground-truth step description embeddings y_{a_1..T} of some sample (projected,
  plus a position embedding). Queries and text attend to each other (queries also to the
  image); the query outputs, mean-pooled, give one matched/unmatched logit per pair. This is
  the text input a_1:T of Eq. 5, as in BLIP-2's image-text matching.

Optionally the Q-Former starts from a local BLIP-2 checkpoint directory (config.json with a
`qformer_config`, weights in *.safetensors with keys `qformer.*` and `query_tokens`).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from planllm_ros.model.config import QFormerConfig


def _blip2_qformer_config(directory: Path) -> Blip2QFormerConfig:
    path = directory / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"BLIP-2 Q-Former checkpoint {directory}: missing config.json")
    data = json.loads(path.read_text())
    data = data.get("qformer_config", data)
    if data.get("model_type") not in (None, "blip_2_qformer"):
        raise ValueError(f"{path}: expected a BLIP-2 config with a qformer_config, got model_type "
                         f"{data.get('model_type')!r}")
    fields = {k: v for k, v in data.items() if k not in ("model_type", "transformers_version", "architectures")}
    return Blip2QFormerConfig(**fields)


def _blip2_qformer_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """The `qformer.*` and `query_tokens` tensors of a BLIP-2 checkpoint (sharded or not)."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"BLIP-2 Q-Former checkpoint {directory}: no *.safetensors file")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                if key.startswith("qformer.") or key == "query_tokens":
                    tensors[key] = handle.get_tensor(key)
    if not any(k.startswith("qformer.") for k in tensors):
        raise ValueError(f"BLIP-2 Q-Former checkpoint {directory}: no 'qformer.*' weights in {[f.name for f in files]}")
    return tensors


class MIMQFormer(nn.Module):
    """Step queries over image tokens -> x^q (B, T, hidden_dim); plus the VLM matching head."""

    def __init__(self, config: QFormerConfig, hidden_dim: int, horizon: int, text_dim: int, init_std: float):
        super().__init__()
        if config.checkpoint:
            qconfig = _blip2_qformer_config(Path(config.checkpoint))
        else:
            qconfig = Blip2QFormerConfig(
                hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
                num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
                cross_attention_frequency=config.cross_attention_frequency, encoder_hidden_size=hidden_dim,
                hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
            )
        qconfig.use_qformer_text_input = True  # the text FFN of the matching pass
        self.qformer = Blip2QFormerModel(qconfig)
        width = qconfig.hidden_size
        self.image_in = nn.Linear(hidden_dim, qconfig.encoder_hidden_size)
        self.queries = nn.Parameter(torch.randn(horizon, width) * init_std)
        self.text_in = nn.Linear(text_dim, width)
        self.text_position = nn.Parameter(torch.randn(horizon, width) * init_std)
        self.out = nn.Linear(width, hidden_dim)
        self.match_head = nn.Linear(width, 1)
        if config.checkpoint:
            self._load_blip2(Path(config.checkpoint), horizon)

    def _load_blip2(self, directory: Path, horizon: int) -> None:
        tensors = _blip2_qformer_tensors(directory)
        weights = {k[len("qformer."):]: v for k, v in tensors.items() if k.startswith("qformer.")}
        missing, unexpected = self.qformer.load_state_dict(weights, strict=False)
        # BLIP-2 generation checkpoints carry no text FFN (intermediate/output): those start fresh.
        missing = [k for k in missing if ".intermediate." not in k and ".output." not in k]
        if missing or unexpected:
            raise ValueError(f"BLIP-2 Q-Former checkpoint {directory} does not fit its own config: "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        if "query_tokens" in tensors:
            tokens = tensors["query_tokens"].reshape(-1, self.queries.shape[1])
            if tokens.shape[0] < horizon:
                raise ValueError(f"{directory}: {tokens.shape[0]} query tokens, fewer than horizon {horizon}")
            with torch.no_grad():
                self.queries.copy_(tokens[:horizon])

    def forward(self, visual_tokens: torch.Tensor) -> torch.Tensor:
        """Visual tokens (B, M, H) -> x^q (B, T, H). Inference path: queries + image only."""
        batch = visual_tokens.shape[0]
        queries = self.queries.unsqueeze(0).expand(batch, -1, -1)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=self.image_in(visual_tokens))
        return self.out(out.last_hidden_state)

    def match_logits(self, visual_tokens: torch.Tensor, step_text: torch.Tensor) -> torch.Tensor:
        """VLM head: visual tokens (P, M, H) paired with step-text embeddings (P, T, E) -> (P,)
        logits of "this step sequence belongs to these start/goal states"."""
        pairs, horizon = step_text.shape[:2]
        queries = self.queries.unsqueeze(0).expand(pairs, -1, -1)
        text = self.text_in(step_text) + self.text_position[:horizon]
        out = self.qformer(query_embeds=torch.cat([queries, text], dim=1), query_length=queries.shape[1],
                           encoder_hidden_states=self.image_in(visual_tokens))
        pooled = out.last_hidden_state[:, : queries.shape[1]].mean(dim=1)
        return self.match_head(pooled).squeeze(-1)
