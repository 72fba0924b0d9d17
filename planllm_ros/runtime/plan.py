"""The result of one planning call, as every consumer (CLI, node, benchmarks) sees it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Plan:
    """T steps from the start observation to the goal.

    step_ids / labels / scores: the closed-set decoding (scores = the model's probability of
    each chosen step). captions: the LLM's free-form step texts (empty when the model has no
    LLM branch). open_vocab_labels: one label per position from a caller-given label list (None
    when no list was given); open_vocab_method: the model's decoding.open_vocab method that chose
    them (captions, steps, zero_shot or joint; planllm_ros.model.openvocab). timings_ms: wall
    time per stage, e.g. "backbone", "heads", "captions", "decode", "open_vocab", "total".
    """

    horizon: int
    step_ids: list[int]
    labels: list[str]
    scores: list[float]
    captions: list[str] = field(default_factory=list)
    open_vocab_labels: list[str] | None = None
    open_vocab_method: str | None = None
    backend: str = "torch"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def instructions(self) -> str:
        """Numbered human-readable steps: the caption where there is one, else the label."""
        lines = []
        for i, label in enumerate(self.labels):
            caption = self.captions[i] if i < len(self.captions) and self.captions[i] else ""
            text = label if not caption or caption == label else f"{label} ({caption})"
            lines.append(f"{i + 1}. {text}")
        return "\n".join(lines)
