"""The one inference path of a PlanLLM model. Evaluation, the trainer's choice of the
re-ranking weight and the robot's Planner all call `plan_batch` (the trainer's validation,
which already holds its training pass's step logits, decodes them with `decode_steps`); they differ
in the graph runner they pass (TorchGraphs, or a runtime backend running exported ONNX graphs
or TensorRT engines), so what is scored is what the robot runs, and in their decoding policy
(planllm_ros.model.decoding.DecodingPolicy: Viterbi or argmax, LLM re-ranking weight, captions,
beams, open-vocabulary method), which every stage below reads instead of the model's config.

    observations --backbone graph (images only)--> token maps
                 --encoder graph--> visual, state and step tokens      (encoded once per plan)
                 --LLM (torch): h, for knowledge fusion--> heads graph --> step probabilities
                 --Viterbi (train transition matrix), its best candidates re-ranked by the
                   LLM's plan likelihood--> step ids
                   (or, grounded: a search through the state head's start and goal states with
                   the step-effect model, the prior and the LLM only where the plan is familiar)
                 --LLM (torch): free-form plan--> captions (after the step ids, which do not
                   read them, except an llm_only model's)
                 --candidate labels (open vocabulary: step probabilities through the label
                   mapping, step embeddings, captions; planllm_ros.model.openvocab)--> labels

Only start and goal reach the model: nothing about the ground truth can.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from planllm_ros.model import openvocab
from planllm_ros.model.backbone import input_spec, preprocess
from planllm_ros.model.decoding import DecodingPolicy, argmax_decode, grounded_plans, plan_candidates, viterbi
from planllm_ros.model.graphs import BACKBONE, ENCODER, HEADS, GraphRunner
from planllm_ros.model.horizon import AUTO, at_horizon, choose_horizons


@dataclass
class Candidates:
    """Viterbi's best plans of every sample, with both scores the re-ranking combines."""

    paths: np.ndarray  # (B, K, T) step ids, paths[:, 0] is the Viterbi path
    sd_scores: np.ndarray  # (B, K) Viterbi log-scores (step decoder + transitions)
    llm_scores: np.ndarray  # (B, K) log p_LLM(plan sentence | prompt)

    def choose(self, llm_weight: float) -> np.ndarray:
        """(B, T): each sample's candidate maximising sd_score + llm_weight * llm_score. Weight 0
        is plain Viterbi (its path has the best sd_score and comes first on ties)."""
        best = (self.sd_scores + llm_weight * self.llm_scores).argmax(axis=1)
        return self.paths[np.arange(len(self.paths)), best]


@dataclass
class PlanBatch:
    step_ids: np.ndarray  # (B, T) int64, closed set; where horizons differ, -1 past each sample's horizon
    probs: torch.Tensor  # (B, T, N) float32 on the CPU, the step probabilities searched with (horizon.at_horizon)
    captions: list[list[str]]  # T captions per sample; empty lists when none were generated
    open_vocab_ids: np.ndarray | None = None  # (B, T) indices into the candidate labels, when given
    open_vocab_method: str | None = None  # the policy's open_vocab method that chose open_vocab_ids
    open_vocab_evidence: openvocab.Evidence | None = None  # kept on request (to compare methods on one pass)
    candidates: Candidates | None = None  # kept on request (the trainer calibrates the re-ranking on them)
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage (batch total), see plan_batch
    start_states: np.ndarray | None = None  # (B, P) proposition probabilities in the start image (state head)
    goal_states: np.ndarray | None = None  # (B, P) the same in the goal image
    horizons: np.ndarray | None = None  # (B,) steps planned per sample
    horizon_probs: np.ndarray | None = None  # (B, H) p(h = 1..H) where the model chose the horizon


class _Clock:
    """Per-stage wall time; on CUDA it waits for queued work, or a stage's time lands in the next."""

    def __init__(self, device: torch.device):
        self.device = device
        self.began = self.mark = time.perf_counter()
        self.timings: dict[str, float] = {}

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def lap(self, stage: str) -> None:
        now = self._now()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self.mark) * 1000.0
        self.mark = now

    def total(self) -> dict[str, float]:
        """The stages so far and their total (a new dict: the clock may run on)."""
        return {**self.timings, "total": (self._now() - self.began) * 1000.0}


def image_tokens(model, graphs: GraphRunner, images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """uint8 (B, H, W, 3) image batches (any size each) -> (B, L, C) token maps, one backbone run."""
    visual = model.config.visual
    spec = input_spec(visual.backbone, visual.open_clip_model)
    batch = torch.cat([preprocess(x, *spec) for x in images])
    tokens = graphs.run(BACKBONE, {"images": batch})["tokens"]
    return list(tokens.split([len(x) for x in images]))


@torch.inference_mode()
def read_states(model, graphs: GraphRunner, observations: torch.Tensor) -> np.ndarray:
    """(B, P) state proposition probabilities of observations (uint8 images or features), from
    the backbone and encoder graphs alone (the state head reads each observation by itself)."""
    if observations.dtype == torch.uint8:
        (observations,) = image_tokens(model, graphs, [observations])
    tokens = graphs.run(ENCODER, {"start": observations, "goal": observations})
    if "start_states" not in tokens:
        raise ValueError("this model has no state head")
    return tokens["start_states"].float().cpu().numpy()


def rerank_candidates(model, probs: torch.Tensor, state_tokens: torch.Tensor, step_tokens: torch.Tensor,
                      policy: DecodingPolicy, prompt=None) -> Candidates:
    """The policy's `candidates` best Viterbi plans of each sample and the LLM's log-likelihood of
    each, from one batched LLM pass over every candidate sentence (continuing `prompt`, the read
    prompt's KV cache, when given; else over prompt and sentence)."""
    found = [plan_candidates(row, policy.transition, policy.candidates) for row in probs]
    k = min(len(paths) for paths, _ in found)  # fewer than asked only when fewer plans exist
    paths = np.stack([p[:k] for p, _ in found])
    sd_scores = np.stack([s[:k] for _, s in found])
    plans = [[model.step_labels[i] for i in path] for row in paths for path in row]
    llm_scores = model.llm.plan_log_likelihood(state_tokens, step_tokens, plans, prompt).cpu().double().numpy()
    return Candidates(paths, sd_scores, llm_scores)


def grounded_candidates_of(model, probs: torch.Tensor, states: tuple, state_tokens: torch.Tensor,
                            step_tokens: torch.Tensor, policy: DecodingPolicy, prompt=None) -> Candidates:
    """The grounded search's `candidates` best plans per sample; the LLM's log-likelihood of
    each where the backoff prior is in force (0 elsewhere: the LLM learned the training tasks'
    orders, and a new task's plan would be judged by them)."""
    paths, scores, in_force = grounded_plans(probs, states[0], states[1], policy)
    k = min(policy.candidates, paths.shape[1])
    paths, scores = paths[:, :k], scores[:, :k]
    llm_scores = np.zeros_like(scores)
    if model.can_rerank and policy.llm_weight > 0 and in_force.any():
        plans = [[model.step_labels[i] for i in path] for row in paths for path in row]
        llm = model.llm.plan_log_likelihood(state_tokens, step_tokens, plans, prompt).cpu().double().numpy()
        llm_scores = np.where(in_force[:, None], llm.reshape(scores.shape), 0.0)
    return Candidates(paths, scores, llm_scores)


def decode_steps(model, probs: torch.Tensor, state_tokens: torch.Tensor, step_tokens: torch.Tensor,
                 policy: DecodingPolicy, keep_candidates: bool = False,
                 prompt=None, states: tuple | None = None) -> tuple[np.ndarray, Candidates | None]:
    """(B, T, N) step probabilities -> (B, T) ids: argmax; Viterbi with the policy's transition
    matrix; or, for models that can re-rank, with the policy's llm_weight > 0 (and whenever
    `keep_candidates`), Viterbi's best candidates re-ranked with the LLM. Grounded decoding
    reads `states`, the state head's (start, goal) probabilities (B, P)."""
    if policy.method == "grounded":
        if states is None:
            raise ValueError("grounded decoding needs the state head's start and goal states")
        candidates = grounded_candidates_of(model, probs, states, state_tokens, step_tokens, policy, prompt)
        return candidates.choose(policy.llm_weight), candidates
    if not policy.uses_viterbi:
        return argmax_decode(probs), None
    if not (model.can_rerank and (policy.llm_weight > 0 or keep_candidates)):
        return viterbi(probs, policy.transition), None
    candidates = rerank_candidates(model, probs, state_tokens, step_tokens, policy, prompt)
    return candidates.choose(policy.llm_weight), candidates


def horizons_of(model, probs: torch.Tensor, states: tuple | None, policy: DecodingPolicy) -> tuple[np.ndarray, np.ndarray | None]:
    """Each sample's horizon (B,) and, where the model chose it, p(h) (B, H): the policy's
    horizon, the model's T when it names none (planllm_ros.model.horizon)."""
    native = model.config.horizon
    if policy.horizon is None or policy.horizon == native:
        return np.full(len(probs), native), None
    if states is None or not policy.searches_states:
        asked = "choosing the number of steps" if policy.horizon == AUTO else f"horizon {policy.horizon}"
        raise ValueError(f"{asked}: this model plans exactly {native} steps (its step queries are learned per "
                         "position); planning any other number needs a state head and step-effect model")
    if policy.horizon == AUTO:
        return choose_horizons(probs.numpy(), *states, policy.states, policy.grounded, policy.horizon_choice)
    return np.full(len(probs), policy.horizon), None


def decode_horizons(model, probs: torch.Tensor, state_tokens: torch.Tensor, step_tokens: torch.Tensor,
                    policy: DecodingPolicy, horizons: np.ndarray, states: tuple) -> np.ndarray:
    """(B, max horizon) step ids, -1 past each sample's horizon. Samples at the model's T are
    decoded as the policy says (decode_steps); any other horizon by the grounded search over the
    step decoder's position-free probabilities, without the LLM, which learned plans of T steps."""
    native = model.config.horizon
    ids = np.full((len(horizons), int(horizons.max())), -1, dtype=np.int64)
    for h in np.unique(horizons).tolist():
        rows = np.flatnonzero(horizons == h)
        sub = (states[0][rows], states[1][rows])
        if h == native:
            ids[rows, :h], _ = decode_steps(model, probs[rows], state_tokens[rows], step_tokens[rows], policy,
                                            states=sub)
        else:
            search = dataclasses.replace(policy, method="grounded", llm_weight=0.0)
            ids[rows, :h] = grounded_plans(at_horizon(probs[rows].numpy(), h), *sub, search)[0][:, 0]
    return ids


@torch.inference_mode()  # not only no_grad: skipping autograd's version counters saves about a tenth of caption time
def plan_batch(model, graphs: GraphRunner, start: torch.Tensor, goal: torch.Tensor, policy: DecodingPolicy, *,
               keep_candidates: bool = False, labels: openvocab.LabelIndex | None = None,
               keep_evidence: bool = False, on_steps: Callable[[PlanBatch], None] | None = None) -> PlanBatch:
    """Plan a batch as `policy` says. start/goal: uint8 images (B, H, W, 3) (through the backbone
    graph), or float features (B, L, C) / (B, C). labels: candidate labels to name the plan's
    steps from, by the policy's open_vocab method; keep_evidence: gather every open-vocabulary
    source the model has and keep it in the result (openvocab.decode then names the plan by any
    method). The step ids are decoded before the captions are written (only an llm_only model
    reads its ids from its captions), so a caller waiting for ids need not wait for the LLM's
    words: `on_steps`, when captions are to follow, is called with the batch as it stands then
    (no captions; open-vocabulary labels unless their method reads captions). Timings (ms,
    whole batch): backbone, heads (encoder graph, the LLM's h, heads graph), decode, captions,
    open_vocab, total."""
    model.eval()
    variant = model.config.variant
    clock = _Clock(model.description_embeddings.device)
    if start.dtype == torch.uint8:
        start, goal = image_tokens(model, graphs, [start, goal])
    clock.lap("backbone")

    tokens = graphs.run(ENCODER, {"start": start, "goal": goal})
    state_tokens, step_tokens = tokens["state_tokens"], tokens["step_tokens"]
    states = None
    if "start_states" in tokens:
        states = (tokens["start_states"].float().cpu().numpy(), tokens["goal_states"].float().cpu().numpy())
    generate = variant.use_llm and (policy.captions or variant.planning == "llm_only")
    prompt = model.llm.read_prompt(state_tokens, step_tokens) if model.uses_fusion or generate else None
    logits = None
    if variant.planning != "llm_only":
        inputs = {"visual_tokens": tokens["visual_tokens"], "step_tokens": step_tokens}
        if model.uses_fusion:
            inputs["llm_hidden"] = prompt.hidden
        logits = graphs.run(HEADS, inputs)["logits"]
    clock.lap("heads")

    texts: list[list[str]] = [[] for _ in range(len(state_tokens))]
    captions_pending = generate
    if logits is None:  # llm_only: the step ids are read from the captions
        texts, captions_pending = model.llm.generate_captions(state_tokens, step_tokens, prompt, policy.num_beams), False
        logits = model.caption_logits(texts)
        clock.lap("captions")
    probs = logits.float().softmax(-1).cpu()
    horizons, horizon_probs = horizons_of(model, probs, states, policy)
    native = model.config.horizon
    if (horizons == native).all():
        ids, candidates = decode_steps(model, probs, state_tokens, step_tokens, policy, keep_candidates, prompt, states)
    else:  # the LLM writes and re-ranks plans of T steps: at other horizons the plan is the search's alone
        if labels is not None and len(np.unique(horizons)) > 1:
            raise ValueError("open-vocabulary naming plans one horizon per batch: plan these samples one at a time")
        ids, candidates = decode_horizons(model, probs, state_tokens, step_tokens, policy, horizons, states), None
        if len(np.unique(horizons)) == 1:
            probs = torch.from_numpy(at_horizon(probs.numpy(), int(horizons[0]))).float()
            policy = dataclasses.replace(policy, open_vocab=dataclasses.replace(policy.open_vocab, method="steps"))
        captions_pending = captions_pending and bool((horizons == native).any())
    clock.lap("decode")

    open_ids, method, evidence = None, None, None
    wanted = {"zero_shot", "captions"} if keep_evidence else openvocab.sources(policy.open_vocab)

    def name_steps() -> None:  # open vocabulary, once the captions it reads (if any) are there
        nonlocal open_ids, method, evidence
        evidence = openvocab.gather(model, labels, probs, np.asarray(ids), step_tokens, texts, wanted)
        open_ids, method = openvocab.decode(evidence, labels, model, policy), policy.open_vocab.method
        clock.lap("open_vocab")

    def result() -> PlanBatch:
        return PlanBatch(np.asarray(ids, dtype=np.int64), probs, texts, open_ids, method,
                         evidence if keep_evidence else None, candidates if keep_candidates else None,
                         clock.total(), *(states or (None, None)), horizons, horizon_probs)

    if labels is not None and not (captions_pending and "captions" in wanted):
        name_steps()
    if captions_pending:
        if on_steps is not None:
            on_steps(result())
        texts = [t if h == native else [] for t, h in
                 zip(model.llm.generate_captions(state_tokens, step_tokens, prompt, policy.num_beams), horizons)]
        clock.lap("captions")
        if labels is not None and open_ids is None:
            name_steps()
    return result()
