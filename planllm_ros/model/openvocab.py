"""Open-vocabulary planning: a plan's T steps named from any candidate label list.

A user names steps in their own words; the model learned N steps under other names. Three
kinds of evidence score every position t of a plan against every candidate label m (the last
stage of planllm_ros.model.pipeline):

- steps: the closed-set step probabilities p(t, n) over the N known steps, carried to the
  candidates through a label mapping A (N x M) built from text similarity: each known step's
  label, its description's first sentence (the step said plainly) and its whole description
  (with the state sentences) against each candidate's embedding. A user's list is rarely the
  known steps renamed: it holds labels of other tasks (distractors), and steps it does not name.
  Two corrections make the mapping hold up there. Hubness: a candidate that resembles many
  known steps (a generic "stir the mixture") would take whichever it is nearest, so each
  similarity is corrected by how similar the step and the candidate are to their neighbourhoods
  (CSLS: 2 s(n, m) - r(n) - r(m), r the mean of the `hubness_k` largest similarities of each
  to the other side), which leaves the pairs that prefer each other. No match: mapping "assign"
  pairs known steps and candidates one to one (the Hungarian assignment of highest total
  score), never a pair whose cosine similarity is below `no_match`, and a known step left
  without a partner (fewer labels than steps, or none similar enough) stays without a label: a
  plan naming it says "unknown" (UNKNOWN) rather than a wrong label. One to one is what makes
  renaming work: two steps cannot both take the one paraphrase that resembles them most, and a
  list with half the steps labelled leaves the other half unknown. No similarity floor tells a
  missing label from a distractor, though: with this text encoder a step's best unrelated label
  is often more similar than a true paraphrase, so a half list that also holds distractors names
  some unlabelled steps with them (the label report shows how similar each pair is). With
  no_match None (the older behaviour),
  every step gets a partner while candidates last, and steps left over spread their probability
  over the candidates by similarity (softmax). Candidates no known step maps to (steps the model
  never learned) get the uniform share 1/M of the probability, and of every transition into and
  out of them, so the other evidence decides whether they are chosen. Mapping "soft" uses the
  similarity softmax for every known step and assumes nothing about the list.
- zero_shot: the model's step tokens against the candidates' text embeddings in the space
  L_VLC trains (contrast_step against contrast_text); needs no mapping, only the MIM Q-Former.
- captions: the LLM's caption of each position against each candidate label (mixed with the
  candidate's description where the caller has one, e.g. from `planllm describe`).

Methods (a decoding policy's open_vocab, by default the model's config decoding.open_vocab:
planllm_ros.model.config.OpenVocabConfig):
- captions: each position takes the candidate nearest its caption (the paper's retrieval);
- steps: the closed-set plan (Viterbi, LLM re-ranking where configured), each step renamed
  through the mapping, UNKNOWN where the step has no label in the list;
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
UNKNOWN = -1  # a plan position whose step has no label in the candidate list


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

    matrix: np.ndarray  # (N, M), rows sum to 1, or to 0 for a known step without a label
    transition: np.ndarray | None  # (M, M) the train transition matrix carried to the candidates
    similarity: np.ndarray  # (N, M) cosine similarity of the known steps' texts and the candidates
    score: np.ndarray  # (N, M) the similarity corrected for hubness: what the mapping compared

    @property
    def unmapped(self) -> np.ndarray:
        """(M,) bool: candidates no known step maps to (steps the model never learned)."""
        return self.matrix.sum(axis=0) == 0

    @property
    def partner(self) -> np.ndarray:
        """(N,) each known step's candidate, UNKNOWN for a step without a label."""
        return np.where(self.matrix.sum(axis=1) > 0, self.matrix.argmax(axis=1), UNKNOWN)

    def carry(self, probs: np.ndarray) -> np.ndarray:
        """(..., N) closed-set probabilities -> (..., M): p A, and 1/M for unmapped candidates."""
        mass = probs @ self.matrix
        mass[..., self.unmapped] = 1.0 / self.matrix.shape[1]
        return mass


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def hubness_corrected(similarity: np.ndarray, k: int) -> np.ndarray:
    """CSLS: 2 s(n, m) - r(n) - r(m), r(n) the mean of step n's k largest similarities to the
    candidates, r(m) that of candidate m to the known steps (k = 0: `similarity` unchanged)."""
    if k == 0:
        return similarity
    rows = np.sort(similarity, axis=1)[:, -min(k, similarity.shape[1]):].mean(axis=1, keepdims=True)
    cols = np.sort(similarity, axis=0)[-min(k, similarity.shape[0]):].mean(axis=0, keepdims=True)
    return 2.0 * similarity - rows - cols


def label_mapping(score: np.ndarray, mapping: str, temperature: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """(N, M) known step -> candidate weights from their (N, M) scores; see the module docstring.
    allowed: (N, M) bool, the pairs similar enough to be made (None: every step is paired while
    candidates last, the rest keep their softmax row); with "assign", a step left without a
    partner gets a zero row, with "soft" a step without any allowed pair does."""
    from scipy.optimize import linear_sum_assignment

    soft = _softmax(score / temperature, axis=1)
    if mapping == "soft":
        return soft if allowed is None else np.where(allowed.any(axis=1, keepdims=True), soft, 0.0)
    if mapping != "assign":
        raise ValueError(f"unknown label mapping {mapping!r}: expected assign or soft")
    steps, size = score.shape
    if allowed is None:
        rows, cols = linear_sum_assignment(score, maximize=True)
        matrix = soft.copy()  # known steps without a partner keep their soft row
    else:  # one "no match" column per step, below what any other pairing of the allowed ones could lose
        low = score.min() - steps * (score.max() - score.min() + 1.0)
        padded = np.concatenate([np.where(allowed, score, low - 1.0), np.full((steps, steps), low)], axis=1)
        rows, cols = linear_sum_assignment(padded, maximize=True)
        rows, cols = rows[cols < size], cols[cols < size]
        matrix = np.zeros_like(soft)
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


def step_similarity(model, candidates: torch.Tensor, settings: OpenVocabConfig) -> np.ndarray:
    """(N, M) cosine similarity of the model's known steps and the (M, D) unit candidate
    embeddings: label_weight x that of the step labels + the rest x that of the descriptions, of
    which first_sentence x that of their first sentences (models that keep their description
    texts) and the rest that of the whole descriptions."""
    encoder = model.text_encoder()
    candidates = candidates.float().cpu()
    described = model.description_embeddings.float().cpu() @ candidates.t()
    if model.step_descriptions is not None and settings.first_sentence > 0:
        first = encoder.encode([_first_sentence(text) for text in model.step_descriptions]).float()
        described = settings.first_sentence * (first @ candidates.t()) + (1.0 - settings.first_sentence) * described
    labels = encoder.encode(model.step_labels).float() @ candidates.t()
    return (settings.label_weight * labels + (1.0 - settings.label_weight) * described).double().numpy()


def _first_sentence(text: str) -> str:
    return text.split(". ", 1)[0].strip()


@dataclass(frozen=True)
class StepMatch:
    """One known step and the candidate label naming it (None: no candidate is similar enough)."""

    step: str
    label: str | None
    similarity: float  # cosine similarity of the step's texts and its label (or, without one, its nearest candidate)
    margin: float  # similarity above the no-match floor (negative: below it, so never paired)


@dataclass(frozen=True)
class LabelReport:
    """How a candidate list maps onto a model's known steps (LabelIndex.report)."""

    matches: tuple[StepMatch, ...]
    unused: tuple[str, ...]  # candidates no known step took (steps the model never learned, or distractors)

    @property
    def unlabelled(self) -> list[str]:
        """The known steps without a label: plans naming them say "unknown"."""
        return [m.step for m in self.matches if m.label is None]

    @property
    def least_sure(self) -> list[StepMatch]:
        """The labelled steps, closest to the no-match threshold first."""
        return sorted((m for m in self.matches if m.label is not None), key=lambda m: m.margin)

    def summary(self, shown: int = 3) -> str:
        """One line: how many steps got a label, which did not, the least sure mappings."""
        named = len(self.matches) - len(self.unlabelled)
        least = "; ".join(f"{m.step!r} -> {m.label!r} (similarity {m.similarity:.2f}, margin {m.margin:+.2f})"
                          for m in self.least_sure[:shown])
        missing = ", ".join(repr(step) for step in self.unlabelled[:shown])
        more = f" and {len(self.unlabelled) - shown} more" if len(self.unlabelled) > shown else ""
        return (f"{named} of {len(self.matches)} known steps have a label, {len(self.unused)} labels name none of "
                f"them; without a label (plans say unknown): {missing + more or 'none'}; least sure: {least or 'none'}")


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
        key = (id(model), id(transition), settings.mapping, settings.label_weight, settings.first_sentence,
               settings.hubness_k, settings.no_match)
        cached = self._mappings.get(key)
        if cached is not None and cached[0][0] is model and cached[0][1] is transition:
            return cached[1]
        similarity = step_similarity(model, self.embeddings, settings)
        score = hubness_corrected(similarity, settings.hubness_k)
        allowed = None if settings.no_match is None else similarity >= settings.no_match
        matrix = label_mapping(score, settings.mapping, model.config.loss.temperature, allowed)
        result = Mapping(matrix, None if transition is None else carry_transition(transition, matrix), similarity, score)
        self._mappings[key] = ((model, transition), result)
        return result

    def report(self, model, transition, settings: OpenVocabConfig) -> "LabelReport":
        """What the mapping made of this list for `model`: each known step's label and how sure."""
        mapping = self.mapping(model, transition, settings)
        partner, nearest = mapping.partner, mapping.score.argmax(axis=1)
        matches = []
        for step, (label, m) in enumerate(zip(model.step_labels, partner)):
            chosen = int(m) if m != UNKNOWN else int(nearest[step])
            matches.append(StepMatch(label, self.labels[m] if m != UNKNOWN else None,
                                     round(float(mapping.similarity[step, chosen]), 4),
                                     round(float(mapping.similarity[step, chosen] - (settings.no_match or 0.0)), 4)))
        unused = [label for label, free in zip(self.labels, mapping.unmapped) if free]
        return LabelReport(tuple(matches), tuple(unused))

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
    its transition matrix (module docstring); UNKNOWN where `steps` finds no label for a step."""
    settings = policy.open_vocab
    method, temperature = settings.method, model.config.loss.temperature
    if method == "captions":
        return _needed(evidence.captions, "captions", method).argmax(axis=-1)
    if method == "zero_shot":
        return _needed(evidence.zero_shot, "zero_shot", method).argmax(axis=-1)
    mapping = index.mapping(model, policy.transition, settings)
    if method == "steps":
        return np.where(evidence.closed_ids >= 0, mapping.partner[evidence.closed_ids], UNKNOWN)
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
