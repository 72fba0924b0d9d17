"""Closed-set step decoding (Eq. 11-13): step decoder, knowledge fusion, step refiner, classifier.

All three are the same building block, a cross-attention block (pre-norm multi-head
cross-attention + feed-forward, residual): T step representations read a memory.
- StepDecoder (Eq. 11): learnable queries q^SD read [x0v, xTv, x^q] -> r^SD.
- Knowledge fusion (Eq. 12): r^SD reads the LLM hidden states h_1..T -> r^KF.
- Step refiner (Eq. 13): r^KF reads all N description embeddings y -> r^SR -> classifier.
"""
from __future__ import annotations

import torch
from torch import nn

from planllm_ros.model.config import HeadsConfig


class CrossAttentionBlock(nn.Module):
    """queries (B, T, H) attend to memory (B, M, H); residual, pre-norm, feed-forward."""

    def __init__(self, hidden_dim: int, config: HeadsConfig):
        super().__init__()
        self.norm_q = nn.LayerNorm(hidden_dim)
        self.norm_m = nn.LayerNorm(hidden_dim)
        self.attention = nn.MultiheadAttention(hidden_dim, config.num_heads, dropout=config.dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(hidden_dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden_dim, config.ffn_mult * hidden_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ffn_mult * hidden_dim, hidden_dim),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        memory = self.norm_m(memory)
        attended, _ = self.attention(self.norm_q(queries), memory, memory, need_weights=False)
        x = queries + self.dropout(attended)
        return x + self.dropout(self.feed_forward(self.norm_ff(x)))


class StepDecoder(nn.Module):
    """r^SD = CrossAtten(q^SD_1..T, [x0v, xTv, x^q]) (Eq. 11)."""

    def __init__(self, hidden_dim: int, horizon: int, config: HeadsConfig, init_std: float):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(horizon, hidden_dim) * init_std)
        self.block = CrossAttentionBlock(hidden_dim, config)

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        queries = self.queries.unsqueeze(0).expand(memory.shape[0], -1, -1)
        return self.block(queries, memory)


class StepRefiner(nn.Module):
    """r^SR = CrossAtten(r^KF, y) (Eq. 13), then the classifier over the N steps.

    y (N, E) is projected once into the hidden space and shared by every sample."""

    def __init__(self, hidden_dim: int, text_dim: int, num_steps: int, config: HeadsConfig):
        super().__init__()
        self.description_in = nn.Linear(text_dim, hidden_dim)
        self.block = CrossAttentionBlock(hidden_dim, config)
        self.norm = nn.LayerNorm(hidden_dim)
        self.classifier = nn.Linear(hidden_dim, num_steps)

    def forward(self, steps: torch.Tensor, descriptions: torch.Tensor) -> torch.Tensor:
        """steps (B, T, H), descriptions (N, E) -> logits (B, T, N)."""
        memory = self.description_in(descriptions).unsqueeze(0).expand(steps.shape[0], -1, -1)
        return self.classifier(self.norm(self.block(steps, memory)))


class StateHead(nn.Module):
    """Which state propositions hold in one image: each proposition's sentence embedding, projected,
    is a query that reads the image's backbone tokens; a linear score of what it read is the
    proposition's logit. Queries come from the sentences, so the head scores a proposition by
    what it says, and the same weights serve any vocabulary of sentences.

    tokens (B, L, C) backbone token map (L = 1 for a per-second feature vector),
    sentences (P, E) proposition embeddings -> logits (B, P)."""

    def __init__(self, feature_dim: int, num_tokens: int, hidden_dim: int, text_dim: int, config: HeadsConfig,
                 init_std: float):
        super().__init__()
        self.token_in = nn.Linear(feature_dim, hidden_dim)
        self.position = nn.Parameter(torch.randn(num_tokens, hidden_dim) * init_std)
        self.query_in = nn.Linear(text_dim, hidden_dim)
        self.block = CrossAttentionBlock(hidden_dim, config)
        self.norm = nn.LayerNorm(hidden_dim)
        self.score = nn.Linear(hidden_dim, 1)

    def forward(self, tokens: torch.Tensor, sentences: torch.Tensor) -> torch.Tensor:
        if tokens.dim() == 2:
            tokens = tokens.unsqueeze(1)
        memory = self.token_in(tokens.float()) + self.position[: tokens.shape[1]]
        queries = self.query_in(sentences).unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.score(self.norm(self.block(queries, memory))).squeeze(-1)
