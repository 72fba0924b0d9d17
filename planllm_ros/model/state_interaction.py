"""Visual state encoder (Eq. 1) and visual state interaction (Eq. 4), over token sets.

x_t = p_v(f_v(v_t)) is applied per token: f_v is frozen (precomputed dataset features, or a
backbone's spatial map run on uint8 images), p_v is the trainable projection. Each
observation is a set of L tokens, one per location of the backbone's map (L = 1 for
per-second dataset features or with visual.pool_tokens).

Beside the start and goal tokens the encoder makes per-location change tokens
p_delta(f_v(goal) - f_v(start)) (config.visual.state_change, on by default; not in the paper).
Frozen features are dominated by the scene, which start and goal share; what the steps did is
in the difference, and a step changes a few percent of the pixels, so the difference is kept
per location rather than after pooling. Every token gets a learned position embedding (its
location) and a role embedding (start, goal or change).

The state interaction (Eq. 4) then lets the start, goal and change tokens of each location
attend to each other, so that each knows what the other state looks like there; its output
[x0v, xTv(, change)] is what the Q-Former and the step decoder read (their queries attend to
every location). With one token per state this is exactly the paper's self-attention over
[x0, xT]. Attention across locations is left to those queries: full self-attention over all
3 x 196 tokens cost about ten times more training time on the CPU presets.
"""
from __future__ import annotations

import torch
from torch import nn

from planllm_ros.model.backbone import VisualBackbone, build_backbone
from planllm_ros.model.config import VisualConfig

ROLES = ("start", "goal", "change")


class VisualStateEncoder(nn.Module):
    """Start and goal observations -> visual tokens (B, R*L, hidden_dim), roles in ROLES order
    (R = 3 with state_change, else 2), L tokens each.

    Observations: features (B, C) (one token) or (B, L, C) float, or images (B, H, W, 3) uint8,
    which go through the frozen backbone. The backbone is built on the first image batch
    (precomputed-feature datasets never pay for it) and is never part of a checkpoint.
    """

    def __init__(self, config: VisualConfig, hidden_dim: int, dropout: float, init_std: float):
        super().__init__()
        self.config = config
        self.projection = _projection(config.feature_dim, hidden_dim, dropout)  # p_v
        self.change = _projection(config.feature_dim, hidden_dim, dropout) if config.state_change else None  # p_delta
        self.num_roles = 3 if config.state_change else 2
        self.position = nn.Parameter(torch.randn(1 if config.pool_tokens else config.num_tokens, hidden_dim) * init_std)
        self.role = nn.Parameter(torch.randn(self.num_roles, hidden_dim) * init_std)
        self.backbone: VisualBackbone | None = None

    @property
    def tokens_per_role(self) -> int:
        """Tokens each role hands on: 1 with pool_tokens, else config.num_tokens / merge^2."""
        return 1 if self.config.pool_tokens else self.config.num_tokens // self.config.merge ** 2

    def _merge(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, g*g, H) -> (B, (g/merge)^2, H): average merge x merge blocks of the square map."""
        k = self.config.merge
        if k == 1:
            return tokens
        grid = round(self.config.num_tokens ** 0.5)  # a config constant, so an exported graph keeps a dynamic batch
        square = tokens.transpose(1, 2).reshape(-1, tokens.shape[-1], grid, grid)
        return nn.functional.avg_pool2d(square, k).flatten(2).transpose(1, 2)

    def image_backbone(self) -> VisualBackbone:
        """The frozen backbone named by the config, built (and moved to this model's device) on first use."""
        if self.config.backbone is None:
            raise ValueError("got uint8 images but visual.backbone is None: this model takes features only")
        if self.backbone is None:
            self.backbone = build_backbone(self.config.backbone, self.config.backbone_checkpoint,
                                           self.config.open_clip_model, self.config.layer)
            self.backbone.to(self.position.device)
        return self.backbone

    def features(self, observation: torch.Tensor) -> torch.Tensor:
        """f_v: features pass through, images go through the frozen backbone -> (B, L, C)."""
        if observation.dtype == torch.uint8:
            observation = self.image_backbone()(observation)
        if observation.ndim == 2:
            observation = observation.unsqueeze(1)
        count = observation.shape[1] if observation.ndim == 3 else -1
        if (observation.ndim != 3 or observation.shape[2] != self.config.feature_dim
                or not (self.config.pool_tokens or count == self.config.num_tokens)):
            tokens = "any number of" if self.config.pool_tokens else str(self.config.num_tokens)
            raise ValueError(
                f"expected features of shape (B, {tokens} tokens, {self.config.feature_dim}) (or (B, "
                f"{self.config.feature_dim}) for one token) or uint8 images (B, H, W, 3), got "
                f"{tuple(observation.shape)} {observation.dtype}"
            )
        observation = observation.to(self.position.dtype)
        return observation.mean(1, keepdim=True) if self.config.pool_tokens else observation

    def forward(self, start: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """(B, R*L, hidden_dim): start tokens, goal tokens (and change tokens), each + position + role."""
        start_features, goal_features = self.features(start), self.features(goal)
        if start_features.shape != goal_features.shape:
            raise ValueError(f"start and goal must give features of the same shape, got {tuple(start_features.shape)} "
                             f"and {tuple(goal_features.shape)}")
        roles = [self.projection(start_features), self.projection(goal_features)]
        if self.change is not None:
            roles.append(self.change(goal_features - start_features))
        tokens = [self._merge(x + self.position) + self.role[i] for i, x in enumerate(roles)]
        return torch.cat(tokens, dim=1)

    def summarize(self, visual_tokens: torch.Tensor) -> torch.Tensor:
        """(B, R*L, H) -> (B, R, H): the mean token of each role (what the LLM prompt gets)."""
        batch, _, hidden = visual_tokens.shape
        return visual_tokens.view(batch, self.num_roles, -1, hidden).mean(2)


def _projection(in_dim: int, hidden_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(in_dim),
        nn.Linear(in_dim, hidden_dim),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_dim, hidden_dim),
    )


class StateInteraction(nn.Module):
    """SelfAtten over the role tokens of each location (Eq. 4): one pre-norm transformer
    encoder layer, applied to every location's R tokens as one short sequence."""

    def __init__(self, hidden_dim: int, num_heads: int, ffn_mult: int, dropout: float):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(hidden_dim, num_heads, ffn_mult * hidden_dim, dropout,
                                                activation="gelu", batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(hidden_dim)

    def forward(self, tokens: torch.Tensor, num_roles: int) -> torch.Tensor:
        """(B, R*L, H) -> (B, R*L, H): [x0v, xTv(, change)], same layout."""
        batch, count, hidden = tokens.shape
        per_location = tokens.view(batch, num_roles, count // num_roles, hidden).transpose(1, 2)
        mixed = self.layer(per_location.reshape(-1, num_roles, hidden))
        mixed = mixed.view(batch, count // num_roles, num_roles, hidden).transpose(1, 2)
        return self.norm(mixed.reshape(batch, count, hidden))
