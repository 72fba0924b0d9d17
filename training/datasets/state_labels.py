"""State labels for the start and goal images of training windows, from step descriptions only.

What a real dataset gives is a window's step labels and, per step, SCHEMA-style before/after
sentences; no dataset says what the whole world looks like. From those this module derives
(planllm_ros.model.states has the vocabulary and the step-effect model):

1. **Alternatives**: proposition pairs a step turns one into the other (about one subject) and
   that no boundary of any training plan is described by both. A boundary between steps a_j and
   a_{j+1} is described by after(a_j) and before(a_{j+1}) together, so "the cup is on the table"
   (before a tea bag goes in) and "the cup is full" (after the water) are seen together and stay
   compatible, while "the tomato is whole" and "the tomato is sliced" never are.
2. **Labels** of a window's two images, under the frame assumption (what no step deletes stays):
   - start, true: every precondition of a step of the window that no earlier step of the window
     produced (it must already have held at the start);
   - start, false: the first step's effects that are not its preconditions (a step makes a
     change), and the alternatives of what is true;
   - goal, true: the start's true propositions run forward through the window (each step deletes
     the alternatives of its effects and adds its effects);
   - goal, false: what the window deleted and did not restore, and the alternatives of what is true;
   - everything else is unknown (UNKNOWN), and so is a proposition labelled both ways.
3. **The whole video**: a dataset annotates every step of a video, not only the window, so each
   image is labelled from everything the video says about its moment: the steps after it must
   have found their preconditions (rule "start" over the rest of the video), and the steps
   before it left their effects (rule "goal" over the video so far); where the two disagree the
   proposition is unknown. On the tabletop (seed 0, T=3, 4800 training windows) this labels 62.8 %
   of the propositions about the objects in each image instead of 35.9 %, and 96.0 % of them agree
   with the hidden world (97.0 % for the window alone).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from planllm_ros.model.states import StateModel

UNKNOWN = -1


def boundaries(model: StateModel, plan: Sequence[int]) -> list[set[int]]:
    """The propositions that describe each boundary of a plan: before its first step, between
    consecutive steps, after its last."""
    sets = [set(model.pre[plan[0]])]
    for prev, nxt in zip(plan[:-1], plan[1:]):
        sets.append(set(model.add[prev]) | set(model.pre[nxt]))
    sets.append(set(model.add[plan[-1]]))
    return sets


def fit_state_model(before: Sequence[Sequence[str]], after: Sequence[Sequence[str]],
                    plans: Iterable[Sequence[int]]) -> StateModel:
    """The step-effect model of the described steps, with alternatives read from training plans."""
    draft = StateModel.build(before, after, ())
    together: set[tuple[int, int]] = set()
    for plan in {tuple(int(s) for s in p) for p in plans}:
        for described in boundaries(draft, plan):
            ordered = sorted(described)
            together.update((i, j) for k, i in enumerate(ordered) for j in ordered[k + 1:])
    return StateModel.build(before, after, [p for p in draft.candidate_alternatives() if p not in together])


def window_labels(model: StateModel, plan: Sequence[int], rivals: list[set[int]] | None = None,
                  before: Sequence[int] = (), after: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(P,) int8 labels (1 true, 0 false, UNKNOWN) of a window's start and goal images.
    before / after: the video's steps before and after the window (3. in the module's text)."""
    rivals = model.rivals() if rivals is None else rivals
    plan, before, after = list(plan), list(before), list(after)
    return (_labels_between(model, before, plan + after, rivals),
            _labels_between(model, before + plan, after, rivals))


def _labels_between(model: StateModel, done: list[int], todo: list[int], rivals: list[set[int]]) -> np.ndarray:
    """Labels of the image between the steps `done` and the steps `todo` of one video."""
    needed = _plan_labels(model, todo, rivals)[0] if todo else None
    left = _plan_labels(model, done, rivals)[1] if done else None
    if needed is None or left is None:
        return needed if left is None else left
    merged = np.where(needed == UNKNOWN, left, needed).astype(np.int8)
    merged[(needed != UNKNOWN) & (left != UNKNOWN) & (needed != left)] = UNKNOWN
    return merged


def _plan_labels(model: StateModel, plan: list[int], rivals: list[set[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the images before and after `plan` from its steps alone (2. in the module's text)."""
    produced: set[int] = set()
    start_true: set[int] = set()
    for step in plan:
        start_true |= set(model.pre[step]) - produced
        produced |= set(model.add[step])
    start_false = set(model.add[plan[0]]) - set(model.pre[plan[0]])

    state, deleted = set(start_true), set()
    for step in plan:
        removed = set(model.delete[step])
        state = (state - removed) | set(model.add[step])
        deleted = (deleted | removed) - set(model.add[step])
    return (_labels(model.num_propositions, start_true, start_false, rivals),
            _labels(model.num_propositions, state, deleted, rivals))


def _labels(size: int, true: set[int], false: set[int], rivals: list[set[int]]) -> np.ndarray:
    false = false | set().union(*(rivals[p] for p in true)) if true else set(false)
    labels = np.full(size, UNKNOWN, dtype=np.int8)
    labels[sorted(false - true)] = 0
    labels[sorted(true - false)] = 1
    return labels


def dataset_labels(model: StateModel, plans: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(B, P) start and goal labels of every window, from the windows' own steps."""
    rivals = model.rivals()
    pairs = [window_labels(model, plan, rivals) for plan in plans]
    return np.stack([s for s, _ in pairs]), np.stack([g for _, g in pairs])


def state_model_of(dataset) -> StateModel:
    """The step-effect model of a training split: its step descriptions' before/after sentences
    and its plans. Raises DatasetError when no description has any state sentence."""
    from training.datasets.base import DatasetError

    before = [d.before for d in dataset.descriptions]
    after = [d.after for d in dataset.descriptions]
    if not any(before) and not any(after):
        raise DatasetError(f"{dataset.name}: a state head needs step descriptions with before/after state "
                           f"sentences (SCHEMA format), and none of the {len(before)} steps has any")
    return fit_state_model(before, after, dataset.sequences())


class StateLabeller:
    """Start and goal labels of training windows, computed once per distinct window and the
    video's steps around it."""

    def __init__(self, model: StateModel):
        self.model = model
        self.rivals = model.rivals()
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, steps, before=None, after=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) step ids, and the video's steps before (B, Lb) and after (B, La) each window
        padded with -1 (collate's "before" and "after"; None: unknown) -> start and goal labels,
        int8 tensors (B, P)."""
        plans, befores, afters = _rows(steps), _rows(before), _rows(after)
        rows = []
        for plan, ahead, behind in zip(plans, befores or [()] * len(plans), afters or [()] * len(plans)):
            key = (tuple(plan), tuple(s for s in ahead if s >= 0), tuple(s for s in behind if s >= 0))
            if key not in self._cache:
                self._cache[key] = window_labels(self.model, key[0], self.rivals, key[1], key[2])
            rows.append(self._cache[key])
        return (torch.from_numpy(np.stack([s for s, _ in rows])), torch.from_numpy(np.stack([g for _, g in rows])))


def _rows(ids) -> list[list[int]] | None:
    """A (B, L) tensor or array of step ids as lists of ints (None stays None)."""
    if ids is None:
        return None
    return np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids).astype(np.int64).tolist()
