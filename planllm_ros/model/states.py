"""World states as sentences, and what each step does to them: the state vocabulary and the
task-independent step-effect model.

Real datasets describe steps, not worlds: SCHEMA-style descriptions give each step a few
"before" sentences (what must hold for the step to happen, about what the step acts on) and
"after" sentences (what the step makes true). This module turns those sentences into
propositions and a STRIPS-like model over them, with nothing taken from any task:

- a **proposition** is a distinct normalised sentence (case, punctuation and articles ignored,
  so "The water is in a container." and "the water is in the container" are one proposition);
- a step's **preconditions** are its before-sentences and its **effects** its after-sentences;
- two propositions are **alternatives** (they cannot hold together) when a step turns one into
  the other (one among its before-, the other among its after-sentences, both about the same
  subject) and no boundary of any training plan is described by both (`alternatives`, in
  training.datasets.state_labels, reads the plans). A step **deletes** the alternatives of its
  effects: slicing the tomato makes "the tomato is whole" false.

Everything else persists (the frame assumption). The model is saved in the model folder
(STATE_MODEL_FILE), so the exporter and the node carry it with the weights.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

# the verb that ends a state sentence's subject: "The jello mix contains no water." -> "jello mix"
_SUBJECT = re.compile(r"^(.*?)\s+(is|are|has|have|contains?|was|were)\b")
_VERB_KIND = {"is": "is", "are": "is", "was": "is", "were": "is", "has": "has", "have": "has",
              "contain": "contains", "contains": "contains"}
_ARTICLES = {"a", "an", "the"}
# a predicate that starts with one of these says where something is, not what it is like
_PLACES = {"on", "in", "at", "inside", "under", "over", "into", "onto", "beside", "near", "next"}


def normalize(sentence: str) -> str:
    """The proposition a sentence states: lower case, words only, articles dropped."""
    words = re.findall(r"[a-z0-9']+", sentence.lower())
    return " ".join(w for w in words if w not in _ARTICLES)


def subject(proposition: str) -> tuple[str, str] | None:
    """What a normalised sentence is about (the words before its first "is/has/contains") and
    what kind of thing it says: "place" (where it is: "is on the stove"), else its verb ("is",
    "has", "contains"); None when it has no such verb. Only sentences of one subject and one kind
    can be alternatives: "the pot is on the stove" and "the pot is hot" can both hold, and so
    can "the bread is sliced" and "the bread has butter on it"."""
    match = _SUBJECT.match(proposition)
    if not match or not match.group(1):
        return None
    rest = proposition[match.end():].split()
    if rest and rest[0] in _PLACES:
        return match.group(1), "place"
    return match.group(1), _VERB_KIND[match.group(2)]


@dataclass(frozen=True)
class StateModel:
    """Propositions (their first-seen sentence as written) and, per step id, the indices of its
    preconditions, effects and deletions. `delete` is derived from `alternatives`: a step deletes
    every alternative of each of its effects."""

    sentences: tuple[str, ...]
    pre: tuple[tuple[int, ...], ...]
    add: tuple[tuple[int, ...], ...]
    delete: tuple[tuple[int, ...], ...]
    alternatives: tuple[tuple[int, int], ...] = ()  # (i, j), i < j: propositions that never hold together

    def __post_init__(self) -> None:
        if not (len(self.pre) == len(self.add) == len(self.delete)):
            raise ValueError("pre, add and delete must have one entry per step")
        size = len(self.sentences)
        for name in ("pre", "add", "delete"):
            for row in getattr(self, name):
                if any(not 0 <= i < size for i in row):
                    raise ValueError(f"{name} refers to a proposition outside 0..{size - 1}")

    @property
    def num_propositions(self) -> int:
        return len(self.sentences)

    @property
    def num_steps(self) -> int:
        return len(self.pre)

    # -------------------------------------------------------------- construction
    @staticmethod
    def propositions(before: Sequence[Sequence[str]], after: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
        """The state vocabulary of per-step before/after sentences: the sentences (first spelling
        of each proposition, in order of appearance) and each step's pre / add indices."""
        index: dict[str, int] = {}
        sentences: list[str] = []

        def ids(texts: Sequence[str]) -> tuple[int, ...]:
            out: list[int] = []
            for text in texts:
                key = normalize(text)
                if not key:
                    continue
                if key not in index:
                    index[key] = len(sentences)
                    sentences.append(text.strip())
                if index[key] not in out:
                    out.append(index[key])
            return tuple(out)

        pre = tuple(ids(b) for b in before)
        add = tuple(ids(a) for a in after)
        return tuple(sentences), pre, add

    @classmethod
    def build(cls, before: Sequence[Sequence[str]], after: Sequence[Sequence[str]],
              alternatives: Iterable[tuple[int, int]]) -> "StateModel":
        """The model of steps described by `before` / `after` (one list of sentences per step id),
        given which propositions are alternatives (indices into the vocabulary `propositions`
        returns for the same sentences)."""
        sentences, pre, add = cls.propositions(before, after)
        pairs = tuple(sorted({(min(i, j), max(i, j)) for i, j in alternatives if i != j}))
        rivals: dict[int, set[int]] = {}
        for i, j in pairs:
            rivals.setdefault(i, set()).add(j)
            rivals.setdefault(j, set()).add(i)
        delete = tuple(tuple(sorted(set().union(*(rivals.get(p, set()) for p in effects)) - set(effects)))
                       for effects in add)
        return cls(sentences, pre, add, delete, pairs)

    def candidate_alternatives(self) -> list[tuple[int, int]]:
        """Pairs a step turns one into the other (a before- and an after-sentence of one step
        about the same subject and of the same kind: `subject`); training.datasets.state_labels
        keeps those no plan boundary shows together."""
        subjects = [subject(normalize(s)) for s in self.sentences]
        pairs = set()
        for before, after in zip(self.pre, self.add):
            for i in before:
                for j in after:
                    if i != j and subjects[i] is not None and subjects[i] == subjects[j]:
                        pairs.add((min(i, j), max(i, j)))
        return sorted(pairs)

    # -------------------------------------------------------------- use
    def rivals(self) -> list[set[int]]:
        """Per proposition, the propositions it cannot hold together with."""
        out: list[set[int]] = [set() for _ in self.sentences]
        for i, j in self.alternatives:
            out[i].add(j)
            out[j].add(i)
        return out

    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boolean (N, P) tables of pre, add and delete, for vectorised decoding (built once)."""
        return self._masks

    @cached_property
    def index_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per step, the propositions of its preconditions, new effects (not also preconditions),
        effects and deletions as (N, L) index rows padded with P (built once): the decoder sums
        over them by gathering, with no BLAS call whose thread pool would fight the planner's."""
        pre, add, delete = self._masks
        return tuple(_padded(m) for m in (pre, add & ~pre, add, delete))

    @cached_property
    def _masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tables = []
        for rows in (self.pre, self.add, self.delete):
            table = np.zeros((self.num_steps, self.num_propositions), dtype=bool)
            for step, row in enumerate(rows):
                table[step, list(row)] = True
            tables.append(table)
        return tables[0], tables[1], tables[2]

    # -------------------------------------------------------------- files
    def to_dict(self) -> dict:
        return {"sentences": list(self.sentences), "pre": [list(r) for r in self.pre],
                "add": [list(r) for r in self.add], "delete": [list(r) for r in self.delete],
                "alternatives": [list(p) for p in self.alternatives]}

    @classmethod
    def from_dict(cls, data: dict) -> "StateModel":
        try:
            return cls(tuple(data["sentences"]), tuple(tuple(r) for r in data["pre"]),
                       tuple(tuple(r) for r in data["add"]), tuple(tuple(r) for r in data["delete"]),
                       tuple(tuple(p) for p in data.get("alternatives", ())))
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a state model: {err}") from None

    def save(self, path: str | Path) -> None:
        from planllm_ros.model.folder import write_text_atomic

        write_text_atomic(Path(path), json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "StateModel":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _padded(mask: np.ndarray) -> np.ndarray:
    """(N, P) bool -> (N, L) int: each row's true columns, padded with P."""
    width = max(1, int(mask.sum(1).max()))
    rows = np.full((mask.shape[0], width), mask.shape[1], dtype=np.int64)
    for i, row in enumerate(mask):
        cols = np.flatnonzero(row)
        rows[i, : len(cols)] = cols
    return rows
