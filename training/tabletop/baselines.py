"""Simple planners of the tabletop domain and its exact ceiling (measured by `planllm bench baselines`).

Planners (none sees the test labels except where said):
- first/last + most frequent: a multinomial logistic regression on the (start, goal) features
  predicts the first and the last step; the plan is the most frequent training sequence with
  that (first, last) pair (falling back to the most frequent one with that first step).
- oracle-task random order: GIVEN THE TRUE TASK (an oracle), draw a random valid plan of the
  task (options, alternatives and a random order consistent with its partial order) and a
  random window of T steps from it.
- nearest neighbour: the steps of the training sample whose (start, goal) features are closest:
  cosine similarity of [start, goal, goal - start], each L2-normalised (the difference cancels
  what start and goal share -- layout, cloth, light -- and keeps what the steps changed). The
  plain [start, goal] variant is reported too.
- the exact ceiling (not a planner one could build from images): the best *expected* SR any
  planner can reach, even one that reads the true symbolic start and goal states. Several step
  sequences lead from one state pair to another (commuting steps), so it is below 100: it is the
  sum over (start, goal) state pairs of the largest P(pair, sequence), computed exactly from
  every plan of every seen task with its probability under the generator and the windows the
  split sampler takes (`window_distribution`). The planner that reaches it answers that
  sequence (`state_planner`). It is an expectation over draws of a split, not a bound on one
  draw: on a finite set of samples the same planner scores above or below it by chance.
- the task-independent ceiling (`task_independent_ceiling`): the same reading of the true
  states by a planner that knows what every step does but no task, so has no reason to prefer
  one of the sequences that lead from start to goal over another: what planning new tasks from
  step effects can expect.

Features are the frozen backbone's (training.tabletop.features). A spatial map (L, C) is
average-pooled to one C-vector here: these planners are baselines on pooled features.
"""
from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from training.evaluation.metrics import procedure_metrics
from training.tabletop.dataset import windows
from training.tabletop.tasks import SEEN_TASKS, TASKS, Task
from training.tabletop.world import STEP_INDEX, STEPS, PreconditionError, State, apply

StateKey = tuple  # a state frozen as its sorted (object, ObjectState) items
Windows = dict[tuple[StateKey, StateKey], dict[tuple[int, ...], Fraction]]


def _pooled(feature: np.ndarray) -> np.ndarray:
    """One vector per image: a spatial map (L, C) is averaged over its L locations."""
    feature = np.asarray(feature, dtype=np.float32)
    return feature.mean(axis=0) if feature.ndim == 2 else feature


def _pairs(ds, with_difference: bool = True) -> np.ndarray:
    """(B, 3D) [start, goal, goal - start], each L2-normalised ((B, 2D) without the difference)."""
    start = np.stack([_pooled(s.start) for s in ds.samples])
    goal = np.stack([_pooled(s.goal) for s in ds.samples])
    norm = lambda x: x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)  # noqa: E731
    parts = [norm(start), norm(goal)] + ([norm(goal - start)] if with_difference else [])
    return np.concatenate(parts, axis=1).astype(np.float32)


def nearest_neighbour(train, test, with_difference: bool = True) -> np.ndarray:
    a = torch.from_numpy(_pairs(train, with_difference))
    b = torch.from_numpy(_pairs(test, with_difference))
    nearest = (b @ a.T).argmax(dim=1).numpy()
    return np.stack([train.samples[i].steps for i in nearest])


def _logistic_regression(x: np.ndarray, y: np.ndarray, num_classes: int, weight_decay: float = 1e-3) -> torch.nn.Linear:
    """Full-batch L-BFGS softmax regression (standardised inputs are expected)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], num_classes)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt) + weight_decay * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model


def fit_first_last_frequent(train):
    """The first/last + most frequent planner fit on `train`: a function from a dataset to its
    plans (fit once, apply to several splits)."""
    xa = _pairs(train)
    mean, std = xa.mean(0), xa.std(0) + 1e-6
    xa = (xa - mean) / std
    seqs = [tuple(int(v) for v in s.steps) for s in train.samples]
    n = train.vocab.num_steps
    first_model = _logistic_regression(xa, np.array([s[0] for s in seqs]), n)
    last_model = _logistic_regression(xa, np.array([s[-1] for s in seqs]), n)
    by_pair, by_first = Counter(), Counter()
    for s in seqs:
        by_pair[(s[0], s[-1], s)] += 1
        by_first[(s[0], s)] += 1
    overall = Counter(seqs).most_common(1)[0][0]

    def plan(test) -> np.ndarray:
        xb = torch.from_numpy((_pairs(test) - mean) / std)
        with torch.no_grad():
            first, last = first_model(xb).argmax(1).numpy(), last_model(xb).argmax(1).numpy()
        preds = []
        for f, l in zip(first.tolist(), last.tolist()):
            match = [(c, s) for (a, b, s), c in by_pair.items() if a == f and b == l] or \
                    [(c, s) for (a, s), c in by_first.items() if a == f]
            preds.append(max(match)[1] if match else overall)
        return np.array(preds, dtype=np.int64)

    return plan


def first_last_frequent(train, test) -> np.ndarray:
    return fit_first_last_frequent(train)(test)


def oracle_task_random(test, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    preds = []
    for s in test.samples:
        plan = TASKS[s.task].sample_plan(rng)
        k = int(rng.integers(len(plan) - test.horizon + 1))
        preds.append([STEP_INDEX[key] for key in plan[k:k + test.horizon]])
    return np.array(preds, dtype=np.int64)


def _freeze(state: State) -> StateKey:
    return tuple(sorted(state.items()))


def window_distribution(tasks: list[Task], horizon: int) -> Windows:
    """P(start state, goal state, step ids) of one window of a split over `tasks`, exactly.

    The split sampler (dataset.windows) takes the tasks in turn and every window of each
    episode, so a window of plan p of task t has probability P(p | t) / (number of tasks x
    expected windows per episode). Plans share most of their states, so each (state, step)
    transition is applied once; each task's window weights are summed as integers over its
    common denominator.
    """
    dists = [task.plan_distribution() for task in tasks]
    windows_per_episode = sum(p * max(0, len(plan) - horizon + 1) for d in dists for plan, p in d.items()) / len(dists)
    table: Windows = {}
    for task, dist in zip(tasks, dists):
        scale = math.lcm(*(p.denominator for p in dist.values()))
        states = [task.start_state()]  # index = state id
        ids = {_freeze(states[0]): 0}
        after: dict[tuple[int, str], int] = {}  # (state id, step) -> state id
        counts: Counter = Counter()
        for plan, p in dist.items():
            keys = [0]
            for key in plan:
                if (keys[-1], key) not in after:
                    state = apply(states[keys[-1]], STEPS[STEP_INDEX[key]])
                    if _freeze(state) not in ids:
                        ids[_freeze(state)] = len(states)
                        states.append(state)
                    after[(keys[-1], key)] = ids[_freeze(state)]
                keys.append(after[(keys[-1], key)])
            weight = p.numerator * (scale // p.denominator)
            step_ids = tuple(STEP_INDEX[k] for k in plan)
            for k in range(len(plan) - horizon + 1):
                counts[(keys[k], keys[k + horizon], step_ids[k:k + horizon])] += weight
        frozen = list(ids)
        norm = scale * len(dists) * windows_per_episode
        for (first, last, seq), count in counts.items():
            seqs = table.setdefault((frozen[first], frozen[last]), {})
            seqs[seq] = seqs.get(seq, Fraction(0)) + count / norm
    return table


def best_sequences(table: Windows) -> dict[tuple[StateKey, StateKey], tuple[int, ...]]:
    """The most likely step sequence of each state pair: what the ceiling's planner answers."""
    return {pair: max(seqs, key=seqs.__getitem__) for pair, seqs in table.items()}


@functools.lru_cache(maxsize=None)
def seen_window_table(horizon: int) -> Windows:
    """`window_distribution` over the seen tasks (those of train, val, test and the demo), computed
    once per horizon: a few seconds at T=3."""
    return window_distribution([TASKS[i] for i in SEEN_TASKS], horizon)


@functools.lru_cache(maxsize=None)
def _seen_best(horizon: int) -> dict[tuple[StateKey, StateKey], tuple[int, ...]]:
    return best_sequences(seen_window_table(horizon))


def ceiling_steps(start: State, goal: State, horizon: int) -> tuple[int, ...] | None:
    """What the exact ceiling's planner answers for one window of a seen task: the most likely
    `horizon` steps from the true `start` to the true `goal` state (None for a pair no seen task's
    window has, e.g. a window of a held-out task). Read against the truth over many windows, it
    says how much of a model's miss no planner could avoid."""
    return _seen_best(horizon).get((_freeze(start), _freeze(goal)))


def exact_ceiling(table: Windows) -> dict[str, float]:
    """The expected metrics (percent) of the planner that answers `best_sequences`: its SR is the
    best any planner can reach from the true states, sum over pairs of max P(pair, sequence)."""
    best = best_sequences(table)
    entries = [(best[pair], seq, p) for pair, seqs in table.items() for seq, p in seqs.items()]
    weights = np.array([float(p) for _, _, p in entries])
    per_entry = [procedure_metrics(np.array([b]), np.array([s])) for b, s, _ in entries]
    metrics = {name: float(weights @ np.array([m[name] for m in per_entry])) / weights.sum() for name in per_entry[0]}
    metrics["sr"] = 100.0 * float(sum(max(seqs.values()) for seqs in table.values()))  # exact, not via floats
    return metrics


def sequences_from(start: State, horizon: int) -> dict[StateKey, int]:
    """How many sequences of `horizon` world steps (any of them, whatever the task) lead from
    `start` to each state they can reach. A step can happen only where every object it uses is on
    the table (`Step.objects`: what it acts on, the containers it puts things in and the props it
    uses) and its preconditions hold. Sequences that meet in one state are counted together,
    so the work grows with the states reached, not with the sequences."""
    usable = [step for step in STEPS if step.objects <= set(start)]
    frontier = {_freeze(start): (start, 1)}
    for _ in range(horizon):
        reached: dict[StateKey, tuple[State, int]] = {}
        for state, count in frontier.values():
            for step in usable:
                try:
                    after = apply(state, step)
                except PreconditionError:
                    continue
                key = _freeze(after)
                reached[key] = (after, count + reached.get(key, (after, 0))[1])
        frontier = reached
    return {key: count for key, (_, count) in frontier.items()}


def task_independent_ceiling(table: Windows, horizon: int) -> float:
    """The expected SR (percent, exact) of a planner that reads the true start and goal states and
    knows the world's own step rules but no task: it picks uniformly among every sequence of
    `horizon` steps that leads from start to goal (`sequences_from`). The true sequence is one of
    them, so a window succeeds with probability 1 / their number. This is what any planner that
    plans new tasks from step effects alone can expect; a prior over orders seen in training can
    only help on the tasks that prior was learned from."""
    by_start: dict[StateKey, list[tuple[StateKey, Fraction]]] = {}
    for (start, goal), seqs in table.items():
        by_start.setdefault(start, []).append((goal, sum(seqs.values(), Fraction(0))))
    total = Fraction(0)
    for start, goals in by_start.items():
        counts = sequences_from(dict(start), horizon)
        total += sum(p / counts[goal] for goal, p in goals)
    return 100.0 * float(total)


@dataclass(frozen=True)
class StatePlans:
    """What the ceiling's planner answers on a split's real windows, beside the truth."""

    pred: np.ndarray  # (samples, T) step ids
    gt: np.ndarray  # (samples, T) step ids
    episodes: np.ndarray  # (samples,) the index of each window's episode within the split


def state_planner(split: str, horizon: int, seed: int, num_samples: int, table: Windows) -> StatePlans:
    """The ceiling's planner on the split's real windows (the very samples `load_tabletop` gives
    for these arguments): what it scores on them, which is not the expectation `exact_ceiling`."""
    best = best_sequences(table)
    episodes, picked = windows(split, horizon, seed, num_samples)
    pred = [best[(_freeze(episodes[e].states[k]), _freeze(episodes[e].states[k + horizon]))] for e, k in picked]
    gt = [episodes[e].plan[k:k + horizon] for e, k in picked]
    return StatePlans(np.array(pred, dtype=np.int64), np.array(gt, dtype=np.int64),
                      np.array([e for e, _ in picked], dtype=np.int64))


def untold_state_plans(split: str, horizon: int, seed: int, num_samples: int,
                       tables: dict[int, Windows]) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """What a planner that reads the true states answers on the split's real windows of
    `horizon` steps when nobody tells it the horizon, `tables` holding every horizon it may
    choose: (most likely, shortest). Most likely: the sequence of any length with the largest
    P(pair, sequence | length), each length equally likely (as in a benchmark with equal numbers
    per horizon); shortest: the best sequence of the fewest steps that lead from start to goal."""
    episodes, picked = windows(split, horizon, seed, num_samples)
    likely, shortest = [], []
    for e, k in picked:
        pair = (_freeze(episodes[e].states[k]), _freeze(episodes[e].states[k + horizon]))
        found = [tables[h][pair] for h in sorted(tables) if pair in tables[h]]
        likely.append(max(((p, seq) for seqs in found for seq, p in seqs.items()), key=lambda x: x[0])[1])
        shortest.append(max(found[0], key=found[0].__getitem__))
    return likely, shortest
