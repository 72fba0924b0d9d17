"""The Planner: what the CLI, the ROS node and the benchmarks call to plan.

    planner = Planner.from_dir("models/tabletop-tiny", backend="onnxruntime", device="cpu")
    plan = planner.plan(start_rgb, goal_rgb)          # -> Plan (step ids, labels, scores, captions)

A model folder (planllm_ros.model.folder: a `planllm train` run directory's model/ or the folder
itself) is one written by the trainer or PlanLLM.save_pretrained (the torch backend needs nothing
else) or by `planllm export` (adds onnx/, the merged LLM and the model card). Planning is
planllm_ros.model.pipeline.plan_batch, the very function evaluation runs, with this planner's
backend running the graphs and its decoding policy (planllm_ros.model.decoding.DecodingPolicy)
deciding the rest. Stages, each timed: backbone (frozen image encoder; skipped for feature
inputs), heads (the encoder graph, the LLM's hidden states h in torch, the heads graph),
decode (Viterbi with the train transition matrix when the folder has one, else argmax; with
the model's decoding.llm_weight > 0 Viterbi's best candidates are re-ranked by the LLM, torch),
captions (LLM generation, torch, KV-cached; after the step ids, which a caller may take first:
Planner.plan's on_steps) and, given candidate labels, open vocabulary: the plan's steps named
from those labels by the model's decoding.open_vocab method (planllm_ros.model.openvocab).
Threads per op come from planllm_ros.runtime.threads. The planner never changes its model, so
planners with other policies may share it.

    planner.plan(start, goal, on_steps=publish_ids)   # ids as soon as decoded, then the plan with captions
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.folder import load_model_folder
from planllm_ros.model.graphs import takes_images
from planllm_ros.model.horizon import AUTO
from planllm_ros.model.openvocab import UNKNOWN, LabelIndex, LabelReport, requirement_problem
from planllm_ros.model.pipeline import PlanBatch, plan_batch, read_states
from planllm_ros.model.progress import Progress, ProgressConfig, track
from planllm_ros.runtime.backends import BACKENDS, GraphBackend, load_backend
from planllm_ros.runtime.backends.base import parse_device
from planllm_ros.runtime.errors import PlannerError
from planllm_ros.runtime.plan import Plan, readings
from planllm_ros.runtime.threads import ThreadSettings, thread_settings


class Planner:
    """Plans T steps from a start and a goal observation with one loaded model."""

    def __init__(self, model, backend: GraphBackend, model_dir: Path, policy: DecodingPolicy,
                 threads: ThreadSettings | None = None):
        """threads: torch's threads per op while this planner plans (None: the defaults of
        planllm_ros.runtime.threads); the backend was given its own when it was loaded."""
        self.model = model
        self.backend = backend
        self.model_dir = model_dir
        self.policy = policy
        self.threads = threads or thread_settings()
        self.device = backend.device
        self._labels: LabelIndex | None = None

    @classmethod
    def from_dir(cls, path: str | Path, backend: str = "torch", device: str = "cpu", *,
                 backbone_checkpoint: str | None = None, captions: bool = True, num_beams: int = 1,
                 llm_dtype: str | None = None, threads: int | None = None, **backend_options) -> "Planner":
        """Load a model folder (or a run directory's). backend: torch | onnxruntime | tensorrt.
        llm_dtype: the LLM's dtype (default float16 on CUDA, float32 on the CPU). num_beams:
        caption generation, 1 = greedy, more = beam search (both KV-cached). threads: threads
        per op for torch and onnxruntime (None or 0: the defaults fastest on a small CPU, see
        planllm_ros.runtime.threads). backend_options go to the backend (onnxruntime:
        provider="cpu"|"cuda"|"tensorrt", fp16, cache_dir; tensorrt: fp16, cache_dir, max_batch)."""
        if backend not in BACKENDS:
            raise PlannerError(f"unknown backend {backend!r}: expected one of {BACKENDS}")
        try:
            settings = thread_settings(threads)
        except ValueError as error:
            raise PlannerError(str(error)) from error
        torch_device = parse_device(device)
        try:
            folder = load_model_folder(path, torch_device, backbone_checkpoint=backbone_checkpoint,
                                       llm_dtype=llm_dtype or ("float16" if torch_device.type == "cuda" else "float32"))
            policy = DecodingPolicy.for_model(folder.model, folder.transition, states=folder.states, captions=captions,
                                              num_beams=num_beams)
        except ValueError as error:  # ModelFolderError included
            raise PlannerError(str(error)) from error
        graphs = load_backend(backend, folder.model, folder.path, device, settings, **backend_options)
        return cls(folder.model, graphs, folder.path, policy, settings)

    # ------------------------------------------------------------------ properties
    @property
    def horizon(self) -> int:
        """The horizon the model was trained for (its step decoder's positions)."""
        return int(self.model.config.horizon)

    @property
    def chooses_horizon(self) -> bool:
        """Whether the model plans any number of steps and chooses it when asked for none: a
        state head and a step-effect model (planllm_ros.model.horizon)."""
        return self.policy.searches_states

    @property
    def max_horizon(self) -> int:
        """The most steps one plan may have."""
        return self.policy.horizon_choice.max_horizon if self.chooses_horizon else self.horizon

    def horizon_problem(self, horizon: int | None) -> str | None:
        """Why this planner cannot plan `horizon` steps (None or 0: it chooses, or plans its T)."""
        if not horizon or horizon == self.horizon:
            return None
        if not self.chooses_horizon:
            return (f"horizon {horizon} requested, but this model plans exactly {self.horizon} steps (its step "
                    f"queries are learned per position, and it has no state head to search other lengths): use a "
                    f"model trained for T={horizon} or one with a state head")
        if not 1 <= horizon <= self.max_horizon:
            return f"horizon {horizon} requested, but this model plans 1 to {self.max_horizon} steps"
        return None

    @property
    def step_labels(self) -> list[str]:
        return list(self.model.step_labels)

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.visual.feature_dim)

    @property
    def feature_shape(self) -> str:
        """The feature input this model takes, for messages: "(C,)" or "(L, C)"."""
        visual = self.model.config.visual
        return f"({self.feature_dim},)" if visual.num_tokens == 1 else f"({visual.num_tokens}, {self.feature_dim})"

    # ------------------------------------------------------------------ inputs
    def _check_observation(self, value, name: str) -> np.ndarray:
        """An HxWx3 uint8 RGB image, or float features: (C,) for one token, (L, C) for a token set."""
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray):
            raise PlannerError(f"{name}: expected a numpy array or torch tensor, got {type(value).__name__}")
        if value.ndim == 3 and value.shape[2] == 3 and value.dtype == np.uint8:
            if min(value.shape[:2]) < 1:
                raise PlannerError(f"{name}: empty image of shape {value.shape}")
            return value
        if value.ndim in (1, 2) and np.issubdtype(value.dtype, np.floating):
            visual = self.model.config.visual
            tokens = value.reshape(-1, value.shape[-1])
            if tokens.shape[1] != self.feature_dim or not (visual.pool_tokens or len(tokens) == visual.num_tokens):
                raise PlannerError(f"{name}: features of shape {value.shape}, this model takes {self.feature_shape} "
                                   f"features of its {visual.backbone or 'dataset'} backbone")
            if not np.isfinite(value).all():
                raise PlannerError(f"{name}: features contain NaN or infinite values")
            return tokens.astype(np.float32)
        raise PlannerError(
            f"{name}: expected an HxWx3 uint8 RGB image or {self.feature_shape} float features, "
            f"got shape {value.shape} dtype {value.dtype}"
        )

    def backbone(self):
        """The frozen torch image backbone that made the model's training features (built on
        first use; the torch backend runs it, other backends run its exported graph). Refuses
        when the model records no buildable backbone or its weights are not available here."""
        visual = self.model.config.visual
        if not takes_images(self.model):
            raise PlannerError(
                f"this model was trained on precomputed {self.feature_dim}-d features and records "
                f"{'no image backbone' if visual.backbone is None else f'the {visual.backbone!r} backbone, which this package cannot run'}"
                f": pass {self.feature_shape} features, not images")
        try:
            return self.model.visual.image_backbone()
        except (FileNotFoundError, ValueError, ImportError) as error:
            raise PlannerError(
                f"this model's features come from the {visual.backbone!r} backbone, whose weights are not "
                f"available here ({error}); configure them with backbone_checkpoint=PATH (CLI: "
                f"--backbone-checkpoint) or pass precomputed {self.feature_shape} features"
            ) from error

    def _as_batch(self, observation: np.ndarray) -> torch.Tensor:
        """One checked observation as a batch of one; images are checked against the backbone here."""
        if observation.dtype == np.uint8 and (self.backend.name == "torch" or not takes_images(self.model)):
            self.backbone()  # builds the torch backbone, or raises why images cannot be planned from
        return torch.from_numpy(np.require(observation, requirements=["C", "W"])).unsqueeze(0)

    # ------------------------------------------------------------------ planning
    @torch.no_grad()
    def plan(self, start, goal, horizon: int | None = None, labels: Sequence[str] | None = None,
             descriptions: Sequence[str | None] | None = None, *, captions: bool = True,
             on_steps: Callable[[Plan], None] | None = None) -> Plan:
        """Plan the steps from `start` to `goal` (images or features). `horizon`: how many steps;
        None (or 0): a model with a state head chooses (Plan.horizon_probs says how sure it is),
        any other plans its trained T; a number: exactly that many (other than T only with a
        state head, up to max_horizon). `labels`: candidate label texts the plan's steps are also named from
        (open_vocab_labels), with optional `descriptions` (one text or None per label); their
        embeddings and mapping are kept while the same list comes again.

        The LLM's captions take longer than everything else, and the step ids do not wait for
        them: captions=False plans without them; `on_steps`, when this plan's captions are to
        be written, is called with the plan as soon as its step ids are decoded (no captions
        yet; timings so far), and the plan returned is the same plan with its captions, from
        the same pass (nothing is computed twice)."""
        problem = self.horizon_problem(horizon)
        if problem:
            raise PlannerError(problem)
        self.threads.apply_torch()  # before any torch op: label embeddings, backbone, LLM
        policy = replace(self.policy, captions=self.policy.captions and captions,
                         horizon=horizon or (AUTO if self.chooses_horizon else None))
        index = self._label_index(labels, descriptions, policy) if labels is not None else None
        start, goal = (self._as_batch(self._check_observation(x, name)) for x, name in ((start, "start"), (goal, "goal")))
        if start.dtype != goal.dtype:  # one image and one feature map: both as features
            start, goal = (self._as_features(x) for x in (start, goal))
        first = None if on_steps is None else (lambda out: on_steps(self._to_plan(out, index)))
        return self._to_plan(plan_batch(self.model, self.backend, start, goal, policy, labels=index, on_steps=first), index)

    def _to_plan(self, out: PlanBatch, index: LabelIndex | None) -> Plan:
        """The first sample of a pipeline batch as a Plan."""
        ids = [i for i in out.step_ids[0].tolist() if i >= 0]
        probs = out.probs[0].numpy()
        sentences = self.policy.states.sentences if self.policy.states is not None else None
        named = None if index is None or out.open_vocab_ids is None else out.open_vocab_ids[0][:len(ids)].tolist()
        return Plan(
            horizon=len(ids), step_ids=[int(i) for i in ids],
            labels=[self.model.step_labels[i] for i in ids],
            scores=[float(probs[t, i]) for t, i in enumerate(ids)], captions=list(out.captions[0]),
            open_vocab_labels=None if named is None else [None if i == UNKNOWN else index.labels[i] for i in named],
            open_vocab_unknown=None if named is None else [t for t, i in enumerate(named) if i == UNKNOWN],
            open_vocab_method=out.open_vocab_method,
            backend=self.backend.name, timings_ms=out.timings_ms,
            start_state=readings(sentences, out.start_states[0]) if sentences and out.start_states is not None else None,
            goal_state=readings(sentences, out.goal_states[0]) if sentences and out.goal_states is not None else None,
            horizon_probs=None if out.horizon_probs is None else [round(float(p), 4) for p in out.horizon_probs[0]],
            start_probs=None if out.start_states is None else out.start_states[0],
        )

    @torch.no_grad()
    def read_state(self, observation) -> np.ndarray:
        """The state head's probability (P,) of every state proposition in one observation."""
        if self.policy.states is None:
            raise PlannerError("this model has no state head: it cannot read states or follow a plan")
        self.threads.apply_torch()
        return read_states(self.model, self.backend, self._as_batch(self._check_observation(observation, "frame")))[0]

    def track(self, plan: Plan, frame=None, previous: int = 0, config: ProgressConfig = ProgressConfig()) -> Progress:
        """Where `frame` stands on `plan` (planllm_ros.model.progress): the steps done, how sure,
        and whether the frame left the plan (then plan again from it). `previous`: the steps
        done at the last frame (progress rarely goes backwards). frame None: the frame the plan
        was made from, whose reading the plan already holds (nothing is read again)."""
        if plan.start_probs is None:
            raise PlannerError("this plan carries no state reading (a model without a state head made it)")
        reading = plan.start_probs if frame is None else self.read_state(frame)
        return track(plan.start_probs, plan.step_ids, reading, self.policy.states, previous, config)

    def _as_features(self, observation: torch.Tensor) -> torch.Tensor:
        if observation.dtype != torch.uint8:
            return observation
        from planllm_ros.model.pipeline import image_tokens

        return image_tokens(self.model, self.backend, [observation])[0]

    def open_vocab_problem(self, policy: DecodingPolicy | None = None) -> str | None:
        """Why this planner cannot name plans from candidate labels (its policy's open-vocabulary
        method needs what the model lacks or what is switched off), or None. policy: the one a
        plan uses, when not the planner's own (captions switched off for that plan)."""
        return requirement_problem(self.model, policy or self.policy)

    def label_report(self, labels: Sequence[str], descriptions: Sequence[str | None] | None = None) -> LabelReport:
        """How `labels` map onto this model's known steps: which steps got no label (plans naming
        them say unknown) and how sure each mapping is. Shares the plans' cached index, so asking
        when a list arrives costs its plans nothing."""
        self.threads.apply_torch()
        index = self._label_index(labels, descriptions, self.policy)
        return index.report(self.model, self.policy.transition, self.policy.open_vocab)

    def _label_index(self, labels: Sequence[str], descriptions: Sequence[str | None] | None,
                     policy: DecodingPolicy) -> LabelIndex:
        """The index of `labels` (kept while the same list and descriptions come again)."""
        if isinstance(labels, str) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise PlannerError("labels: expected a non-empty list of non-empty label strings")
        if descriptions is not None and len(descriptions) != len(labels):
            raise PlannerError(f"descriptions: {len(descriptions)} given for {len(labels)} labels")
        problem = self.open_vocab_problem(policy)
        if problem:
            raise PlannerError(f"labels given, but {problem}")
        described = list(descriptions) if descriptions is not None else None
        if self._labels is None or self._labels.labels != list(labels) or self._labels.descriptions != described:
            try:
                self._labels = LabelIndex(labels, self.model.text_encoder(), described)
            except ValueError as error:
                raise PlannerError(f"labels: {error}") from error
        return self._labels

    def close(self) -> None:
        """Release the backend (sessions, engines); the planner cannot plan afterwards."""
        self.backend.close()
