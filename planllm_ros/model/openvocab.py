"""Open-vocabulary planning: a plan's T steps named from any candidate label list.

A user names steps in their own words; the model learned N steps under other names. Three
kinds of evidence score every position t of a plan against every candidate label m (the last
stage of planllm_ros.model.pipeline):

- steps: the closed-set step probabilities p(t, n) over the N known steps, carried to the
  candidates through a label mapping A (N x M) built from text similarity: each known step's
  label and description embeddings against each candidate's embedding. Mapping "assign" pairs
  known steps and candidates one to one (the Hungarian assignment of highest total
  similarity). That is right when the list renames the known steps, and then much better than
  each step's nearest candidate: two steps cannot both take the one paraphrase that resembles
  them most. When the list is shorter than N, known steps left without a partner spread their
  probability over the candidates by similarity (softmax). When it is longer (it names steps
  the model never learned), the closed set knows nothing of the candidates left over: they get
  the uniform share 1/M of the probability, and of every transition into and out of them, so
  the other evidence decides whether they are chosen. Mapping "soft" uses the similarity
  softmax for every known step and assumes nothing about the list.
- zero_shot: the model's step tokens against the candidates' text embeddings in the space
  L_VLC trains (contrast_step against contrast_text); needs no mapping, only the MIM Q-Former.
- captions: the LLM's caption of each position against each candidate label (mixed with the
  candidate's description where the caller has one, e.g. from `planllm describe`).

Methods (a decoding policy's open_vocab, by default the model's config decoding.open_vocab:
planllm_ros.model.config.OpenVocabConfig):
- captions: each position takes the candidate nearest its caption (the paper's retrieval);
- steps: the closed-set plan (Viterbi, LLM re-ranking where configured), each step renamed
  through the mapping;
- zero_shot: each position takes the candidate nearest its step embedding;
- joint: Viterbi over the candidates with emission scores
      w_steps log(p A) + w_zero_shot log softmax(zero-shot / tau) + w_captions log softmax(captions / tau)
  and the train transition matrix carried through the mapping (A^T P A, rows normalised) with
  weight w_transition; tau is the model's contrastive temperature (loss.temperature).

A `LabelIndex` embeds its labels once and keeps each model's mapping, so a robot that keeps one
label file pays per plan only for its T captions (when the method reads them) and a few small
matrix products.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from planllm_ros.model.config import OpenVocabConfig
from planllm_ros.model.decoding import DecodingPolicy, viterbi

_TINY = 1e-30  # floor before log


@dataclass
class Evidence:
    """A batch's open-vocabulary evidence, on the CPU; sources not gathered are None."""

    probs: np.ndarray  # (B, T, N) closed-set step probabilities
    closed_ids: np.ndarray  # (B, T) the closed-set plan
    zero_shot: np.ndarray | None  # (B, T, M) cosine similarity of step and label embeddings (VLC space)
    captions: np.ndarray | None  # (B, T, M) cosine similarity of captions and labels (text encoder)


@dataclass
class Mapping:
    """Known steps -> candidate labels, for one model and one label list."""

    matrix: np.ndarray  # (N, M), rows sum to 1
    transition: np.ndarray | None  # (M, M) the train transition matrix carried to the candidates

    @property
    def unmapped(self) -> np.ndarray:
        """(M,) bool: candidates no known step maps to (steps the model never learned)."""
        return self.matrix.sum(axis=0) == 0

    def carry(self, probs: np.ndarray) -> np.ndarray:
        """(..., N) closed-set probabilities -> (..., M): p A, and 1/M for unmapped candidates."""
        mass = probs @ self.matrix
        mass[..., self.unmapped] = 1.0 / self.matrix.shape[1]
        return mass


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def label_mapping(similarity: np.ndarray, mapping: str, temperature: float) -> np.ndarray:
    """(N, M) known step -> candidate weights from their (N, M) similarity; see the module docstring."""
    from scipy.optimize import linear_sum_assignment

    soft = _softmax(similarity / temperature, axis=1)
    if mapping == "soft":
        return soft
    if mapping != "assign":
        raise ValueError(f"unknown label mapping {mapping!r}: expected assign or soft")
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    matrix = soft.copy()  # known steps without a partner keep their soft row
    matrix[rows] = 0.0
    matrix[rows, cols] = 1.0
    return matrix


def carry_transition(transition: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The (N, N) transition matrix carried to the candidates: A^T P A with rows normalised.
    Transitions into and out of a candidate no known step maps to are uniform (1/M each), the
    rest of each row is scaled to make room for them."""
    size = matrix.shape[1]
    carried = matrix.T @ np.asarray(transition, dtype=np.float64) @ matrix
    totals = carried.sum(axis=1, keepdims=True)
    carried = np.where(totals > 0, carried / np.where(totals > 0, totals, 1.0), 1.0 / size)
    unmapped = matrix.sum(axis=0) == 0
    carried *= 1.0 - unmapped.mean()
    carried[:, unmapped] = 1.0 / size
    carried[unmapped] = 1.0 / size
    return carried


class LabelIndex:
    """Candidate labels (and optional descriptions), embedded once, plus each model's mapping.

    `descriptions`: one text or None per label. A described label is embedded as the
    normalised sum of its label's and its description's embeddings. The mappings are cached per
    (model, transition matrix, mapping settings) and hold references to both."""

    def __init__(self, labels: Sequence[str], encoder, descriptions: Sequence[str | None] | None = None):
        if not labels:
            raise ValueError("open-vocabulary retrieval needs at least one candidate label")
        if descriptions is not None and len(descriptions) != len(labels):
            raise ValueError(f"{len(descriptions)} descriptions for {len(labels)} candidate labels")
        seen: set[str] = set()
        for label in labels:
            if label in seen:
                raise ValueError(f"candidate label {label!r} appears twice")
            seen.add(label)
        self.labels = list(labels)
        self.descriptions = list(descriptions) if descriptions is not None else None
        self.encoder = encoder
        self.embeddings = self._embed()
        self._mappings: dict[tuple, tuple[tuple, Mapping]] = {}
        self._zero_shot: dict[int, tuple[object, torch.Tensor]] = {}

    def _embed(self) -> torch.Tensor:
        embeddings = self.encoder.encode(self.labels).clone()  # sentence-transformers gives inference tensors
        described = [i for i, text in enumerate(self.descriptions or []) if text]
        if described:
            texts = self.encoder.encode([self.descriptions[i] for i in described])
            embeddings[described] = F.normalize(embeddings[described] + texts, dim=-1)
        return embeddings

    def similarity(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), M) cosine similarity of each text to each candidate."""
        return (self.encoder.encode(list(texts)) @ self.embeddings.t()).numpy()

    def retrieve(self, captions: Sequence[str]) -> np.ndarray:
        """Index into `labels` of the best match for each caption (int64, len(captions))."""
        if not captions:
            return np.zeros(0, dtype=np.int64)
        return self.similarity(captions).argmax(axis=1).astype(np.int64)

    def mapping(self, model, transition, settings: OpenVocabConfig) -> Mapping:
        """The model's known steps -> these candidates (cached)."""
        key = (id(model), id(transition), settings.mapping, settings.label_weight)
        cached = self._mappings.get(key)
        if cached is not None and cached[0][0] is model and cached[0][1] is transition:
            return cached[1]
        known = model.text_encoder().encode(model.step_labels)
        candidates = self.embeddings
        similarity = (settings.label_weight * (known @ candidates.t())
                      + (1.0 - settings.label_weight) * (model.description_embeddings.float().cpu() @ candidates.t()))
        matrix = label_mapping(similarity.double().numpy(), settings.mapping, model.config.loss.temperature)
        result = Mapping(matrix, None if transition is None else carry_transition(transition, matrix))
        self._mappings[key] = ((model, transition), result)
        return result

    def zero_shot_text(self, model) -> torch.Tensor:
        """(M, H) the candidates in the model's VLC space, unit length (cached)."""
        cached = self._zero_shot.get(id(model))
        if cached is not None and cached[0] is model:
            return cached[1]
        device = model.description_embeddings.device
        projected = F.normalize(model.contrast_text(self.embeddings.to(device)), dim=-1)
        self._zero_shot[id(model)] = (model, projected)
        return projected


def sources(settings: OpenVocabConfig) -> set[str]:
    """The evidence beyond the closed-set plan that `settings` reads: "zero_shot", "captions"."""
    if settings.method in ("zero_shot", "captions"):
        return {settings.method}
    if settings.method == "joint":
        return {name for name in ("zero_shot", "captions") if getattr(settings, name) > 0}
    return set()


def requirement_problem(model, policy: DecodingPolicy) -> str | None:
    """Why `model` cannot name plans by `policy` (its open-vocabulary method, with its caption
    generation on or off), or None."""
    settings = policy.open_vocab
    needs = sources(settings)
    if "zero_shot" in needs and not model.config.variant.use_mim:
        return (f"open-vocabulary method {settings.method!r} scores step embeddings, which this model has not "
                f"(no MIM Q-Former); set decoding.open_vocab to a method without zero_shot")
    if "captions" in needs and not model.config.variant.use_llm:
        return (f"open-vocabulary method {settings.method!r} reads the LLM's captions, and this model has no LLM "
                f"branch; set decoding.open_vocab to a method without captions")
    if "captions" in needs and not policy.captions:
        return (f"open-vocabulary method {settings.method!r} reads the LLM's captions, which are switched off "
                f"(captions=False / --no-captions)")
    return None


@torch.no_grad()
def gather(model, index: LabelIndex, probs: torch.Tensor, closed_ids: np.ndarray, step_tokens: torch.Tensor,
           captions: list[list[str]], wanted: set[str]) -> Evidence:
    """The evidence `wanted` ("zero_shot", "captions") that the model and its outputs provide."""
    batch, horizon = closed_ids.shape
    zero_shot = None
    if "zero_shot" in wanted and model.config.variant.use_mim:
        device = model.description_embeddings.device
        steps = F.normalize(model.contrast_step(step_tokens.to(device).float()), dim=-1)  # (B, T, H)
        zero_shot = (steps @ index.zero_shot_text(model).t()).cpu().double().numpy()
    similarity = None
    flat = [c for row in captions for c in row]
    if "captions" in wanted and flat:
        if len(flat) != batch * horizon:
            raise ValueError(f"expected {horizon} captions per sample, got {[len(row) for row in captions]}")
        similarity = index.similarity(flat).astype(np.float64).reshape(batch, horizon, -1)
    return Evidence(probs.double().cpu().numpy(), np.asarray(closed_ids, dtype=np.int64), zero_shot, similarity)


def _log_softmax(similarity: np.ndarray, temperature: float) -> np.ndarray:
    x = similarity / temperature
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _needed(array: np.ndarray | None, name: str, method: str) -> np.ndarray:
    if array is None:
        raise ValueError(f"open-vocabulary method {method!r} needs {name} evidence, which was not gathered")
    return array


def decode(evidence: Evidence, index: LabelIndex, model, policy: DecodingPolicy) -> np.ndarray:
    """(B, T) indices into `index.labels`: the plan named by the policy's open_vocab method, with
    its transition matrix (module docstring)."""
    settings = policy.open_vocab
    method, temperature = settings.method, model.config.loss.temperature
    if method == "captions":
        return _needed(evidence.captions, "captions", method).argmax(axis=-1)
    if method == "zero_shot":
        return _needed(evidence.zero_shot, "zero_shot", method).argmax(axis=-1)
    mapping = index.mapping(model, policy.transition, settings)
    if method == "steps":
        return mapping.matrix[evidence.closed_ids].argmax(axis=-1)
    if method != "joint":
        raise ValueError(f"unknown open-vocabulary method {method!r}")
    emission = 0.0
    if settings.steps > 0:
        emission = emission + settings.steps * np.log(np.maximum(mapping.carry(evidence.probs), _TINY))
    if settings.zero_shot > 0:
        emission = emission + settings.zero_shot * _log_softmax(_needed(evidence.zero_shot, "zero_shot", method),
                                                                temperature)
    if settings.captions > 0:
        emission = emission + settings.captions * _log_softmax(_needed(evidence.captions, "captions", method),
                                                               temperature)
    if mapping.transition is None or settings.transition == 0:
        return emission.argmax(axis=-1)
    # viterbi takes probabilities: exp of the emission scores (shifted per position, which no path
    # comparison sees) and the carried transition matrix to the power of its weight
    likelihood = np.exp(emission - emission.max(axis=-1, keepdims=True))
    return viterbi(likelihood, mapping.transition ** settings.transition)


def retrieve_labels(captions: Sequence[str], candidate_labels: Sequence[str], encoder) -> list[int]:
    """Index into `candidate_labels` of the best match for each caption."""
    return LabelIndex(candidate_labels, encoder).retrieve(captions).tolist()
