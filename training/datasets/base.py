"""Types shared by every procedure-planning dataset.

A sample is one window of T consecutive steps: what the world looked like before the first
step (`start`), after the last (`goal`), and the T global step ids in between. `start` and
`goal` are either feature vectors (D,) float32 or HxWx3 uint8 RGB images; a dataset serves one
kind throughout and says which in `ProcedureDataset.observation`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file and the fault."""


@dataclass(frozen=True)
class StepDescription:
    """An LLM-enriched step (SCHEMA format): a description plus before/after state sentences."""

    label: str
    description: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def text(self) -> str:
        """The text the frozen text encoder embeds for this step (y_i = E_l(d_i), Eq. 3)."""
        parts = [self.description or self.label, *self.before, *self.after]
        return " ".join(p.strip() for p in parts if p.strip())


@dataclass(frozen=True)
class StepVocabulary:
    """The closed set of steps and tasks. Index in `labels` = global step id (0-based)."""

    labels: tuple[str, ...]
    tasks: tuple[str, ...]
    task_steps: dict[int, tuple[int, ...]] = field(default_factory=dict)  # task id -> its step ids

    @property
    def num_steps(self) -> int:
        return len(self.labels)

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)


@dataclass
class Sample:
    start: np.ndarray  # (D,) float32 features or (H, W, 3) uint8 RGB
    goal: np.ndarray
    steps: np.ndarray  # (T,) int64 global step ids
    task: int  # task id (training-side metadata only: never an input of the model)
    video: str  # source video / episode id
    # the steps of the same video before and after the window (training-side only: they say more
    # about what held at the window's two images; empty where a loader does not know them)
    before: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    after: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def horizon(self) -> int:
        return int(self.steps.shape[0])


@dataclass
class ProcedureDataset(Sequence[Sample]):
    """A list of samples of one horizon plus everything a model needs to know about the steps."""

    name: str
    split: str
    horizon: int
    samples: list[Sample]
    vocab: StepVocabulary
    descriptions: list[StepDescription]  # one per global step id, same order as vocab.labels
    observation: Literal["features", "images"] = "features"

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):  # type: ignore[override]
        return self.samples[index]

    def step_labels(self, sample: Sample) -> list[str]:
        return [self.vocab.labels[int(i)] for i in sample.steps]

    def sequences(self) -> list[np.ndarray]:
        return [s.steps for s in self.samples]


def transition_matrix(sequences: Iterable[Sequence[int]], num_steps: int, smoothing: float = 1.0) -> np.ndarray:
    """Row-stochastic (N, N) matrix P[i, j] = p(next = j | current = i) from training sequences.

    Add-`smoothing` (Laplace) counts keep every row a distribution: a step never followed by
    anything in training gets a uniform row instead of NaN, and unseen transitions keep a
    small non-zero probability so Viterbi can still choose them.
    """
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    counts = np.full((num_steps, num_steps), float(smoothing), dtype=np.float64)
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        np.add.at(counts, (seq[:-1], seq[1:]), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0  # only possible with smoothing == 0
    counts[empty] = 1.0
    totals[empty] = num_steps
    return counts / totals


def collate(samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
    """Stack samples into a batch: start/goal (B, D) float32 or (B, H, W, 3) uint8, steps (B, T),
    task (B,), and the video's steps before and after each window, before (B, Lb) and after
    (B, La), padded with -1. Samples of one batch share a horizon."""
    horizons = {s.horizon for s in samples}
    if len(horizons) != 1:
        raise ValueError(f"a batch mixes horizons {sorted(horizons)}")
    return {
        "start": torch.from_numpy(np.stack([s.start for s in samples])),
        "goal": torch.from_numpy(np.stack([s.goal for s in samples])),
        "steps": torch.from_numpy(np.stack([s.steps for s in samples]).astype(np.int64)),
        "task": torch.tensor([s.task for s in samples], dtype=torch.long),
        "before": _padded([s.before for s in samples]),
        "after": _padded([s.after for s in samples]),
    }


def _padded(rows: Sequence[np.ndarray]) -> torch.Tensor:
    """(B, longest) int64 rows padded with -1 on the right."""
    out = torch.full((len(rows), max((len(r) for r in rows), default=0)), -1, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.as_tensor(np.asarray(row, dtype=np.int64))
    return out
