"""Progress along a plan: which of its steps are done, from the state head's reading of a frame.

A plan of h steps from a start reading passes through h + 1 beliefs (planllm_ros.model.states:
each step sets its effects and clears what they replace). A new frame's reading is compared with
each belief on the propositions the plan changes (the others are the same at every point, so
they cannot tell points apart): the log-likelihood of the reading under belief k says how well
"k steps done" explains the frame. Progress rarely goes backwards, so points before the last
one reached get a prior penalty; the posterior's mode is the number of steps done, its
probability how sure that is.

The frame leaves the plan when the plan cannot explain it: a step it had done is undone (the
mode falls back, confidently), or more than `tolerance` of the propositions the plan changes are
read confidently against what the best point believes. Propositions the plan does not change
are not consulted: read image by image, enough of them flip by reading error alone (an unrelated
change goes unnoticed until it touches what the plan changes). Then the caller should plan
again from the frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planllm_ros.model.states import StateModel


@dataclass(frozen=True)
class ProgressConfig:
    """clip: beliefs kept in [clip, 1 - clip], as the grounded search keeps them; backwards: the
    log-prior of each step undone; confident: a reading this far from 0.5 is taken as sure;
    tolerance: the sure contradictions a frame may show before it leaves the plan."""

    clip: float = 0.02
    backwards: float = 4.0
    confident: float = 0.4
    tolerance: int = 1


@dataclass(frozen=True)
class Progress:
    """done: steps of the plan done (0..h); probs: p(done = k), k = 0..h; left_plan: the frame
    is not on the plan (re-plan from it); reason: why it left ("" when on it)."""

    done: int
    probs: tuple[float, ...]
    left_plan: bool
    reason: str = ""

    @property
    def confidence(self) -> float:
        return self.probs[self.done]

    @property
    def finished(self) -> bool:
        return self.done == len(self.probs) - 1


def plan_beliefs(start: np.ndarray, step_ids, states: StateModel, clip: float) -> np.ndarray:
    """(h + 1, P) beliefs along the plan from the start reading (P,)."""
    _, add, delete = states.masks()
    belief = np.clip(np.asarray(start, dtype=np.float64), clip, 1.0 - clip)
    out = [belief]
    for step in step_ids:
        belief = np.where(add[step], 1.0 - clip, np.where(delete[step], clip, belief))
        out.append(belief)
    return np.stack(out)


def track(start: np.ndarray, step_ids, reading: np.ndarray, states: StateModel, previous: int = 0,
          config: ProgressConfig = ProgressConfig()) -> Progress:
    """Where the frame read as `reading` (P,) stands on the plan `step_ids` made from the start
    reading `start` (P,), given that `previous` steps were done at the last frame."""
    beliefs = plan_beliefs(start, step_ids, states, config.clip)
    changed = (beliefs != beliefs[0]).any(axis=0)
    r = np.clip(np.asarray(reading, dtype=np.float64), 0.0, 1.0)
    rc, bc = r[changed], beliefs[:, changed]
    fit = (rc * np.log(bc) + (1.0 - rc) * np.log1p(-bc)).sum(axis=1)
    prior = -config.backwards * np.maximum(previous - np.arange(len(beliefs)), 0)
    logits = fit + prior
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    done = int(probs.argmax())

    sure = np.abs(r - 0.5) >= config.confident
    against = int((sure & changed & ((r >= 0.5) != (beliefs[done] >= 0.5))).sum())
    reason = ""
    if done < previous:
        reason = f"step {previous} of the plan undone"
    elif against > config.tolerance:
        reason = f"{against} of the plan's propositions read against it after {done} step(s)"
    return Progress(done, tuple(round(float(p), 4) for p in probs), bool(reason), reason)
