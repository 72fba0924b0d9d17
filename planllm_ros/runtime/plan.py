"""The result of one planning call, as every consumer (CLI, node, benchmarks) sees it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

HOLDS = 0.5  # a proposition with at least this probability is reported as holding


@dataclass
class StateReading:
    """One state sentence the model reads as holding in an observation, with its probability."""

    sentence: str
    probability: float


def readings(sentences: Sequence[str], probabilities: np.ndarray) -> list[StateReading]:
    """The propositions at or above HOLDS, most certain first."""
    order = np.argsort(-probabilities, kind="stable")
    return [StateReading(sentences[i], round(float(probabilities[i]), 4)) for i in order if probabilities[i] >= HOLDS]


@dataclass
class Plan:
    """T steps from the start observation to the goal.

    step_ids / labels / scores: the closed-set decoding (scores = the model's probability of
    each chosen step). captions: the LLM's free-form step texts (empty when the model has no
    LLM branch). open_vocab_labels: one label per position from a caller-given label list (None
    when no list was given), None at a position whose step has no label in the list;
    open_vocab_unknown: those positions (0-based; empty when every step was named, None without a
    list); open_vocab_method: the model's decoding.open_vocab method that chose
    them (captions, steps, zero_shot or joint; planllm_ros.model.openvocab). timings_ms: wall
    time per stage, e.g. "backbone", "heads", "captions", "decode", "open_vocab", "total".
    start_state / goal_state (models with a state head): the state sentences the model reads as
    holding in the start and goal observations, each with its probability, most certain first;
    they are what a state-grounded plan was chained through, so an operator can see why it was
    chosen (None for models without a state head). horizon_probs: where the model chose the
    number of steps itself, p(h) for h = 1, 2, ... (horizon_confidence: that of the chosen one).
    start_probs: the state head's probability of every proposition in the start observation,
    what Planner.track follows the plan from.
    """

    horizon: int
    step_ids: list[int]
    labels: list[str]
    scores: list[float]
    captions: list[str] = field(default_factory=list)
    open_vocab_labels: list[str | None] | None = None
    open_vocab_method: str | None = None
    backend: str = "torch"
    timings_ms: dict[str, float] = field(default_factory=dict)
    start_state: list[StateReading] | None = None
    goal_state: list[StateReading] | None = None
    open_vocab_unknown: list[int] | None = None
    horizon_probs: list[float] | None = None
    start_probs: np.ndarray | None = field(default=None, repr=False)  # every proposition's, for Planner.track

    @property
    def horizon_confidence(self) -> float | None:
        """p(the chosen horizon), where the model chose it."""
        return None if self.horizon_probs is None else self.horizon_probs[self.horizon - 1]

    def to_dict(self) -> dict:
        """The plan as JSON-ready values (start_probs, the raw reading kept for tracking, left out)."""
        return {k: v for k, v in asdict(self).items() if k != "start_probs"}

    def state_text(self) -> str:
        """The start and goal states as lines of text ("" without a state head)."""
        lines = []
        for name, readings in (("start", self.start_state), ("goal", self.goal_state)):
            if readings is not None:
                lines.append(f"{name}: " + ("; ".join(f"{r.sentence.rstrip('.')} ({r.probability:.2f})" for r in readings)
                                            or "nothing the model knows"))
        return "\n".join(lines)

    def instructions(self) -> str:
        """Numbered human-readable steps: the caption where there is one, else the label."""
        lines = []
        for i, label in enumerate(self.labels):
            caption = self.captions[i] if i < len(self.captions) and self.captions[i] else ""
            text = label if not caption or caption == label else f"{label} ({caption})"
            lines.append(f"{i + 1}. {text}")
        return "\n".join(lines)
