"""Fit how a state-grounded model chooses its number of steps (planllm_ros.model.horizon).

Every horizon h = 1..H gets a grounded score from one search; which score wins is not yet a
good guess of h: a longer plan pays more terms, and a state head that misses a change makes the
goal look nearer than it is. A multinomial logistic model p(h) = softmax(score_h / temperature
+ offset_h) fixes both, fitted by maximum likelihood on val windows of every length (equal
numbers per h, so no horizon is favoured by how often it was drawn). What it learns from is
what a real dataset has: windows between step boundaries and their number of steps.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import DataLoader

from planllm_ros.model.config import HorizonConfig, VisualConfig
from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.graphs import GraphRunner
from planllm_ros.model.horizon import horizon_scores
from planllm_ros.model.pipeline import plan_batch
from training.datasets.base import ProcedureDataset, collate
from training.train.config import DataConfig
from training.train.splits import load_split

SAMPLES_PER_HORIZON = 200


def readings(model, graphs: GraphRunner, policy: DecodingPolicy, dataset: ProcedureDataset,
             batch_size: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The step decoder's probabilities (S, T, N) and the state head's start and goal readings
    (S, P) of a dataset, through the one pipeline (cheapest decoding: only these are kept)."""
    cheap = dataclasses.replace(policy, method="viterbi", llm_weight=0.0, captions=False, horizon=None)
    probs, start, goal = [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        out = plan_batch(model, graphs, batch["start"], batch["goal"], cheap)
        if out.start_states is None:
            raise ValueError("choosing the number of steps needs a model with a state head")
        probs.append(out.probs.numpy())
        start.append(out.start_states)
        goal.append(out.goal_states)
    return np.concatenate(probs), np.concatenate(start), np.concatenate(goal)


def mixed_split(data: DataConfig, split: str, horizons: range, samples: int,
                visual: VisualConfig | None = None) -> dict[int, ProcedureDataset]:
    """`samples` windows of every horizon of `split` (fewer where the data has fewer; datasets
    that give every window, the benchmarks', are subsampled with the data seed)."""
    out = {}
    for h in horizons:
        dataset = load_split(dataclasses.replace(data, horizon=h, eval_samples=samples), split, visual)
        if len(dataset) > samples:
            keep = np.sort(np.random.default_rng([data.seed, h]).permutation(len(dataset))[:samples])
            dataset = dataclasses.replace(dataset, samples=[dataset.samples[i] for i in keep])
        out[h] = dataset
    return out


def fit_choice(scores: np.ndarray, truth: np.ndarray, steps: int = 200) -> HorizonConfig:
    """Offsets and temperature maximising the likelihood of the true horizons (1-based, (S,))
    under softmax(scores / temperature + offsets), scores (S, H)."""
    x = torch.as_tensor(scores, dtype=torch.float64)
    y = torch.as_tensor(np.asarray(truth) - 1, dtype=torch.long)
    log_inverse = torch.zeros((), dtype=torch.float64, requires_grad=True)  # log(1 / temperature)
    offsets = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_inverse, offsets], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x * log_inverse.exp() + offsets, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    centred = (offsets - offsets.mean()).detach().numpy()
    return HorizonConfig(max_horizon=x.shape[1], offsets=[round(float(v), 4) for v in centred],
                         temperature=round(float((-log_inverse.detach()).exp()), 4))


def calibrate(model, graphs: GraphRunner, policy: DecodingPolicy, data: DataConfig,
              samples: int = SAMPLES_PER_HORIZON, visual: VisualConfig | None = None) -> tuple[HorizonConfig, float]:
    """The horizon choice fitted on val windows of every length up to the policy's max_horizon,
    and its val horizon accuracy (percent)."""
    max_horizon = policy.horizon_choice.max_horizon
    scores, truth = [], []
    for h, dataset in mixed_split(data, "val", range(1, max_horizon + 1), samples, visual).items():
        probs, start, goal = readings(model, graphs, policy, dataset)
        scores.append(horizon_scores(probs, start, goal, policy.states, policy.grounded, max_horizon))
        truth.append(np.full(len(probs), h))
    scores, truth = np.concatenate(scores), np.concatenate(truth)
    choice = fit_choice(scores, truth)
    chosen = (scores / choice.temperature + np.asarray(choice.offsets)).argmax(1) + 1
    return choice, 100.0 * float((chosen == truth).mean())
