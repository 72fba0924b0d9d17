"""How many steps: a state-grounded model chooses its own horizon.

A task manager that sends a goal image rarely knows how many steps away it is. A model with a
state head and a step-effect model (planllm_ros.model.states) can say: one grounded beam search
(planllm_ros.model.decoding.grounded_beam) as deep as the largest horizon scores the best plan
of every length h = 1..H, from the state head's start reading to its goal reading. A plan too
short leaves goal propositions unmet (the goal term); one too long pays for steps whose
preconditions or fresh effects the beliefs do not support. Their scores are turned into a
distribution over h with a per-horizon offset and a temperature fitted on val windows of every
length (HorizonConfig, training.train.horizon), which is also how sure the choice is.

The step decoder was trained for one horizon T and has a query per position; for any other
horizon its positions mean nothing, so the search reads its position-free distribution (the
mean over positions: the steps it expects between start and goal). The choice itself reads
only that, so every horizon is scored alike; a plan of the chosen horizon T is then decoded
with the positions as usual.
"""
from __future__ import annotations

import numpy as np

from planllm_ros.model.config import GroundedConfig, HorizonConfig
from planllm_ros.model.decoding import grounded_beam
from planllm_ros.model.states import StateModel

AUTO = 0  # a DecodingPolicy's horizon that asks the model to choose


def position_free(probs: np.ndarray) -> np.ndarray:
    """(B, T, N) step probabilities -> (B, N): which steps the decoder expects, wherever they fall."""
    return np.asarray(probs, dtype=np.float64).mean(axis=1)


def at_horizon(probs: np.ndarray, horizon: int) -> np.ndarray:
    """(B, T, N) -> (B, horizon, N) step probabilities to search with: the decoder's own at its T,
    its position-free distribution at every position otherwise."""
    probs = np.asarray(probs, dtype=np.float64)
    if horizon == probs.shape[1]:
        return probs
    return np.repeat(position_free(probs)[:, None], horizon, axis=1)


def horizon_scores(probs: np.ndarray, start: np.ndarray, goal: np.ndarray, states: StateModel,
                   grounded: GroundedConfig, max_horizon: int) -> np.ndarray:
    """(B, max_horizon) grounded score of the best plan of each length h = 1..max_horizon, from
    one search per sample over the position-free step probabilities."""
    free = position_free(probs)
    out = np.empty((len(free), max_horizon))
    for b in range(len(free)):
        steps = np.repeat(free[b][None], max_horizon, axis=0)
        for h, (_, final) in enumerate(grounded_beam(steps, start[b], goal[b], states, grounded)):
            out[b, h] = final.max()
    return out


def horizon_distribution(scores: np.ndarray, config: HorizonConfig) -> np.ndarray:
    """(B, H) scores -> (B, H) p(h): softmax(score / temperature + offset)."""
    offsets = np.asarray(config.offsets or [0.0] * scores.shape[1], dtype=np.float64)
    logits = scores / config.temperature + offsets[None]
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def choose_horizons(probs: np.ndarray, start: np.ndarray, goal: np.ndarray, states: StateModel,
                    grounded: GroundedConfig, config: HorizonConfig) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's horizon (B,) (1-based) and the distribution it was chosen from (B, H)."""
    p = horizon_distribution(horizon_scores(probs, start, goal, states, grounded, config.max_horizon), config)
    return p.argmax(axis=1) + 1, p
