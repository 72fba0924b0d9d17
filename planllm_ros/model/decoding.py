"""How a plan is decoded: the decoding policy, and closed-set decoding of a (T, N)
step-probability table into T step ids.

Lives in the model package (not training/) because the runtime and the node decode too;
training.evaluation.metrics re-exports it for evaluation code.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from planllm_ros.model.config import CLOSED_SET_METHODS, GroundedConfig, HorizonConfig, OpenVocabConfig
from planllm_ros.model.states import StateModel

_TINY = 1e-30  # floor before log: a zero probability becomes a very unlikely, finite choice


@dataclass(frozen=True, eq=False)
class DecodingPolicy:
    """Every choice the inference pipeline (planllm_ros.model.pipeline.plan_batch) makes after
    the graphs have run, in one object that the caller owns: callers sharing a model each plan
    with their own policy, and planning never writes into the model.

    transition: the train transition matrix (N, N); without one, closed-set decoding is argmax.
    method: closed-set decoding, viterbi, argmax or grounded (a search through the states that
    `states`, the step-effect model, simulates from the state head's reading of the start image;
    `grounded` weighs its terms: grounded_plans). llm_weight > 0: the `candidates` best plans
    (Viterbi's, or the grounded search's where its prior is in force) are re-ranked by the LLM
    (models that can re-rank: PlanLLM.can_rerank).
    captions: generate the LLM's free-form plan (LLM-only planning always does). num_beams:
    caption generation, 1 = greedy, more = beam search. open_vocab: how the plan's steps are
    named from a caller's candidate labels (planllm_ros.model.openvocab).
    horizon: how many steps to plan. None: the model's trained T (the benchmarks' protocol);
    a number: that many (other than T only for state-grounded models, which search any length);
    0 (planllm_ros.model.horizon.AUTO): the model chooses, by `horizon_choice`."""

    transition: np.ndarray | None = None
    method: str = "viterbi"
    llm_weight: float = 0.0
    candidates: int = 10
    captions: bool = True
    num_beams: int = 1
    open_vocab: OpenVocabConfig = field(default_factory=OpenVocabConfig)
    states: StateModel | None = None
    grounded: GroundedConfig = field(default_factory=GroundedConfig)
    horizon: int | None = None
    horizon_choice: HorizonConfig = field(default_factory=HorizonConfig)

    def __post_init__(self) -> None:
        if self.method not in CLOSED_SET_METHODS:
            raise ValueError(f"decode must be one of {CLOSED_SET_METHODS}, got {self.method!r}")
        if self.method == "grounded" and not self.searches_states:
            raise ValueError("grounded decoding needs the model's step-effect model and transition matrix "
                             "(a model folder trained with a state head)")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.horizon is not None and self.horizon < 0:
            raise ValueError(f"horizon must be >= 0 (0: the model chooses), got {self.horizon}")
        if self.llm_weight < 0 or self.candidates < 1:
            raise ValueError(f"llm_weight must be >= 0 and candidates >= 1, got {self.llm_weight} and "
                             f"{self.candidates}")

    @classmethod
    def for_model(cls, model, transition, *, states: StateModel | None = None, method: str | None = None,
                  captions: bool = True, num_beams: int = 1, llm_weight: float | None = None,
                  open_vocab: OpenVocabConfig | None = None,
                  grounded: GroundedConfig | None = None, horizon: int | None = None) -> "DecodingPolicy":
        """The policy a model folder records (its config's decoding section, its transition
        matrix and step-effect model), with the caller's overrides."""
        decoding = model.config.decoding
        return cls(transition, method or decoding.method, decoding.llm_weight if llm_weight is None else llm_weight,
                   decoding.candidates, captions, num_beams, dataclasses.replace(open_vocab or decoding.open_vocab),
                   states, dataclasses.replace(grounded or decoding.grounded), horizon,
                   dataclasses.replace(decoding.horizon))

    @property
    def searches_states(self) -> bool:
        """Whether the policy can search plans through states (grounded decoding, any number of
        steps): it holds the step-effect model and the transition matrix of the backoff prior."""
        return self.states is not None and self.transition is not None

    @property
    def uses_viterbi(self) -> bool:
        """Whether closed-set decoding is Viterbi: asked for, and a transition matrix to run it with."""
        return self.method == "viterbi" and self.transition is not None


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def viterbi(probs, transition) -> np.ndarray:
    """Ids a_1..T maximising prod_t probs[t, a_t] * prod_{t>1} transition[a_{t-1}, a_t].

    The prior over the first step is uniform. Computed in log space, so long horizons and tiny
    probabilities do not underflow. `probs`: (T, N) or (B, T, N); `transition`: (N, N) with
    transition[i, j] = p(next = j | current = i). Returns int64 (T,) or (B, T). Ties resolve
    to the smallest id (argmax order), so results are deterministic.
    """
    p = _as_numpy(probs)
    trans = _as_numpy(transition)
    if p.ndim == 3:
        return np.stack([viterbi(row, trans) for row in p])
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (T, N) or (B, T, N), got {p.shape}")
    horizon, n = p.shape
    if trans.shape != (n, n):
        raise ValueError(f"transition must be ({n}, {n}) for {n} steps, got {trans.shape}")
    log_p = np.log(np.maximum(p, _TINY))
    log_t = np.log(np.maximum(trans, _TINY))
    score = log_p[0].copy()  # best log-score of a path ending in each step
    back = np.zeros((horizon, n), dtype=np.int64)
    for t in range(1, horizon):
        cand = score[:, None] + log_t  # (prev, next)
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(n)] + log_p[t]
    path = np.empty(horizon, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(horizon - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def argmax_decode(probs) -> np.ndarray:
    """Independent per-position argmax: (T, N) -> (T,), (B, T, N) -> (B, T)."""
    return _as_numpy(probs).argmax(axis=-1).astype(np.int64)


def plan_candidates(probs, transition, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The `width` best plans under Viterbi's score (log emission + log transition), best first.

    Beam search of that width, plus the exact Viterbi path (which a narrow beam could drop), so
    candidates[0] is always what `viterbi` returns. `probs` (T, N); returns int64 (K, T) paths
    and their float64 (K,) scores, K <= width. This is the short list the LLM re-scores
    (PlanLLM.decode)."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    log_p = np.log(np.maximum(_as_numpy(probs), _TINY))
    log_t = np.log(np.maximum(_as_numpy(transition), _TINY))
    if log_p.ndim != 2 or log_t.shape != (log_p.shape[1],) * 2:
        raise ValueError(f"probs must be (T, N) and transition (N, N), got {log_p.shape} and {log_t.shape}")
    horizon = log_p.shape[0]
    order = np.argsort(-log_p[0], kind="stable")[:width]
    paths, scores = order[:, None], log_p[0, order]
    for t in range(1, horizon):
        cand = scores[:, None] + log_t[paths[:, -1]] + log_p[t][None, :]  # (K, N)
        flat = np.argsort(-cand, axis=None, kind="stable")[:width]
        rows, cols = np.unravel_index(flat, cand.shape)
        paths, scores = np.concatenate([paths[rows], cols[:, None]], axis=1), cand[rows, cols]
    best = viterbi(probs, transition)  # exact, so its score is the maximum: it goes first
    best_score = log_p[np.arange(horizon), best].sum() + log_t[best[:-1], best[1:]].sum()
    others = ~(paths == best).all(axis=1)
    paths, scores = paths[others], scores[others]
    order = np.argsort(-scores, kind="stable")[: width - 1]
    return (np.concatenate([best[None], paths[order]]).astype(np.int64),
            np.concatenate([[best_score], scores[order]]).astype(np.float64))


def seen_transitions(transition) -> np.ndarray:
    """(N, N) bool: the transitions the training plans show. The matrix is Laplace-smoothed, so
    an unseen transition has its row's smallest value; a row without any larger one (a step no
    training plan continues) has none seen."""
    trans = _as_numpy(transition)
    floor = trans.min(axis=1, keepdims=True)
    return trans > floor * (1.0 + 1e-6)


def grounded_candidates(probs, start, goal, states: StateModel, config: GroundedConfig) -> tuple[np.ndarray, np.ndarray]:
    """The state-grounded beam search of one sample: (K, T) plans and their (K,) scores, best first.

    probs (T, N): the step decoder's probabilities; start, goal (P,): the state head's
    probabilities of each proposition in the start and goal images. A plan's belief starts at
    `start` and each step sets its effects to true and its deletions to false (the frame
    assumption keeps the rest). Score = steps * sum log p(a_t at t) + pre * sum log belief(its
    preconditions) + fresh * sum log(1 - belief(its new effects)) + goal * log-likelihood of
    `goal` under the final belief. The beam keeps the `width` best partial plans by their score
    so far plus the goal term of their current belief (how close they already are)."""
    *_, (paths, final) = grounded_beam(probs, start, goal, states, config)
    order = np.argsort(-final, kind="stable")
    return paths[order], final[order]


def grounded_beam(probs, start, goal, states: StateModel, config: GroundedConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """grounded_candidates' search, depth by depth: after step t it yields the beam's (K, t) plans
    and their (K,) scores as finished plans (goal term included). A plan of t steps is ranked at
    every depth exactly as a search of horizon t ranks it, so one search of depth D scores the
    best plan of every horizon up to D (planllm_ros.model.horizon)."""
    log_steps = np.log(np.maximum(_as_numpy(probs), _TINY))
    lo, hi = config.clip, 1.0 - config.clip
    _, add, delete = states.masks()
    pre_idx, fresh_idx, add_idx, delete_idx = states.index_rows
    g = np.clip(_as_numpy(goal).astype(np.float64), 0.0, 1.0)

    def match(belief: np.ndarray) -> np.ndarray:  # per proposition: log-likelihood of the goal reading
        return g * np.log(belief) + (1.0 - g) * np.log1p(-belief)

    match_hi, match_lo = match(np.full_like(g, hi)), match(np.full_like(g, lo))
    belief = np.clip(_as_numpy(start).astype(np.float64), lo, hi)[None]  # (K, P)
    scores = np.zeros(1)
    paths = np.zeros((1, 0), dtype=np.int64)
    for t in range(log_steps.shape[0]):
        current = match(belief)  # (K, P)
        step = (config.steps * log_steps[t][None] + config.pre * _gather_sum(np.log(belief), pre_idx)
                + config.fresh * _gather_sum(np.log1p(-belief), fresh_idx))  # (K, N)
        # goal term after each step, from the current one: only its effects and deletions change
        goal_after = (current.sum(1, keepdims=True) + _gather_sum(match_hi[None] - current, add_idx)
                      + _gather_sum(match_lo[None] - current, delete_idx))
        total = scores[:, None] + step
        keep = np.argsort(-(total + config.goal * goal_after), axis=None, kind="stable")[: config.width]
        rows, cols = np.unravel_index(keep, total.shape)
        paths = np.concatenate([paths[rows], cols[:, None]], axis=1)
        scores = total[rows, cols]
        belief = np.where(add[cols], hi, np.where(delete[cols], lo, belief[rows]))
        yield paths, scores + config.goal * match(belief).sum(1)


def _gather_sum(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(K, P) values, (N, L) index rows padded with P (StateModel.index_rows) -> (K, N): per
    step, the sum over its propositions (the pad reads a column of zeros)."""
    padded = np.concatenate([values, np.zeros((values.shape[0], 1))], axis=1)
    return padded[:, index].sum(-1)


def grounded_plans(probs, start, goal, policy: DecodingPolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grounded search for a batch, with the backoff transition prior: paths (B, K, T),
    scores (B, K) (prior included where in force), and in_force (B,) bool. The prior is added to
    a sample's candidates only when one of them within `margin` of its best score uses
    transitions seen in training alone; otherwise the sample is taken to be a new task and the
    training tasks' orders are not held against it."""
    config = policy.grounded
    log_t = np.log(np.maximum(_as_numpy(policy.transition), _TINY))
    seen = seen_transitions(policy.transition)
    found = [grounded_candidates(p, s, g, policy.states, config) for p, s, g in zip(probs, start, goal)]
    k = min(len(paths) for paths, _ in found)
    paths = np.stack([p[:k] for p, _ in found])
    scores = np.stack([s[:k] for _, s in found])
    in_force = np.zeros(len(paths), dtype=bool)
    for b in range(len(paths)):
        near = scores[b] >= scores[b, 0] - config.margin
        familiar = seen[paths[b, :, :-1], paths[b, :, 1:]].all(axis=1)
        if (near & familiar).any():
            in_force[b] = True
            scores[b] = scores[b] + config.prior * log_t[paths[b, :, :-1], paths[b, :, 1:]].sum(axis=1)
            order = np.argsort(-scores[b], kind="stable")
            paths[b], scores[b] = paths[b, order], scores[b, order]
    return paths, scores, in_force
