"""The Planner: what the CLI, the ROS node and the benchmarks call to plan.

    planner = Planner.from_dir("models/tabletop-tiny", backend="onnxruntime", device="cpu")
    plan = planner.plan(start_rgb, goal_rgb)          # -> Plan (step ids, labels, scores, captions)

A model folder is one written by PlanLLM.save_pretrained (the torch backend needs nothing
else) or by `planllm export` (adds onnx/, the merged LLM and the model card). Stages, each
timed: backbone (frozen image encoder, torch; skipped for feature inputs), heads (the encoder
graph, the LLM's hidden states h in torch, the heads graph), captions (LLM generation, torch,
KV-cached), decode (closed-set decoding: Viterbi with the train transition matrix when the
folder has one, else argmax; with the model's decoding.llm_weight > 0 Viterbi's best candidates
are re-ranked by the LLM, torch) and, given candidate labels, open-vocabulary retrieval.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from planllm_ros.runtime.backends import BACKENDS, GraphBackend, load_backend
from planllm_ros.runtime.backends.base import parse_device
from planllm_ros.runtime.errors import PlannerError
from planllm_ros.runtime.graphs import ENCODER, HEADS
from planllm_ros.runtime.plan import Plan

TRANSITION_FILE = "transition.safetensors"  # written beside the model by the trainer and the exporter
_LLM_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def load_transition(model_dir: Path, num_steps: int) -> np.ndarray | None:
    """The train-set step transition matrix saved with the model, or None (argmax decoding)."""
    path = model_dir / TRANSITION_FILE
    if not path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        matrix = load_file(str(path))["transition"].double().numpy()
    except (SafetensorError, KeyError, OSError) as error:
        raise PlannerError(f"{path} is corrupt (expected a safetensors file with a 'transition' tensor): {error}") from error
    if matrix.shape != (num_steps, num_steps):
        raise PlannerError(f"{path}: transition matrix {matrix.shape} does not fit the model's {num_steps} steps")
    return matrix


def load_model(model_dir: Path, device: torch.device):
    """PlanLLM.from_pretrained with every failure turned into a PlannerError naming the folder."""
    from safetensors import SafetensorError

    from planllm_ros.model.config import ConfigError
    from planllm_ros.model.planllm import PlanLLM

    if not model_dir.is_dir():
        raise PlannerError(f"model directory {model_dir} does not exist")
    try:
        return PlanLLM.from_pretrained(model_dir).to(device).eval()
    except FileNotFoundError as error:
        raise PlannerError(f"cannot load the model in {model_dir}: {error}") from error
    except (SafetensorError, ConfigError, ValueError, KeyError, OSError, RuntimeError) as error:
        raise PlannerError(f"the model in {model_dir} is corrupt or incomplete: {type(error).__name__}: {error}") from error


class Planner:
    """Plans T steps from a start and a goal observation with one loaded model."""

    def __init__(self, model, backend: GraphBackend, model_dir: Path, transition: np.ndarray | None,
                 backbone_checkpoint: str | None = None, captions: bool = True):
        self.model = model
        self.backend = backend
        self.model_dir = model_dir
        self.transition = transition
        self.device = backend.device
        self.captions = captions and model.config.variant.use_llm
        self.backbone_checkpoint = backbone_checkpoint
        self._backbone = None

    @classmethod
    def from_dir(cls, path: str | Path, backend: str = "torch", device: str = "cpu", *,
                 backbone_checkpoint: str | None = None, captions: bool = True, num_beams: int = 1,
                 llm_dtype: str | None = None, **backend_options) -> "Planner":
        """Load a model folder. backend: torch | onnxruntime | tensorrt. llm_dtype: the LLM's
        dtype (default float16 on CUDA, float32 on the CPU). num_beams: caption generation,
        1 = greedy, more = beam search (both KV-cached). backend_options go to the backend
        (onnxruntime: provider="cpu"|"cuda"|"tensorrt", fp16, cache_dir, threads; tensorrt:
        fp16, cache_dir, max_batch)."""
        if backend not in BACKENDS:
            raise PlannerError(f"unknown backend {backend!r}: expected one of {BACKENDS}")
        if num_beams < 1:
            raise PlannerError(f"num_beams must be >= 1, got {num_beams}")
        torch_device = parse_device(device)
        model_dir = Path(path)
        model = load_model(model_dir, torch_device)
        if model.config.variant.use_llm:
            dtype = llm_dtype or ("float16" if torch_device.type == "cuda" else "float32")
            if dtype not in _LLM_DTYPES:
                raise PlannerError(f"llm_dtype must be one of {sorted(_LLM_DTYPES)}, got {dtype!r}")
            model.llm.model.to(_LLM_DTYPES[dtype])
            model.llm.base_model().generation_config.num_beams = num_beams  # generate()'s default
        transition = load_transition(model_dir, model.config.num_steps)
        graphs = load_backend(backend, model, model_dir, device, **backend_options)
        return cls(model, graphs, model_dir, transition, backbone_checkpoint, captions)

    # ------------------------------------------------------------------ properties
    @property
    def horizon(self) -> int:
        return int(self.model.config.horizon)

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
        """The frozen image backbone that made the model's training features, built on first
        use; refuses when the model records no such backbone or its weights are not configured."""
        if self._backbone is not None:
            return self._backbone
        from planllm_ros.model.backbone import build_backbone

        visual = self.model.config.visual
        if visual.backbone is None:
            raise PlannerError(
                f"this model was trained on precomputed {self.feature_dim}-d features and records no image "
                f"backbone (visual.backbone is null): pass {self.feature_shape} features, not images"
            )
        checkpoint = self.backbone_checkpoint or visual.backbone_checkpoint
        try:
            backbone = build_backbone(visual.backbone, checkpoint, visual.open_clip_model, visual.layer)
        except (FileNotFoundError, ValueError) as error:
            raise PlannerError(
                f"this model's {self.feature_dim}-d features come from the {visual.backbone!r} backbone, whose "
                f"weights are not available here ({error}); configure them with backbone_checkpoint=PATH "
                f"(CLI: --backbone-checkpoint) or pass precomputed {visual.backbone} features"
            ) from error
        if backbone.out_dim != self.feature_dim or not (visual.pool_tokens or backbone.num_tokens == visual.num_tokens):
            raise PlannerError(f"backbone {visual.backbone!r} gives {backbone.num_tokens} tokens of {backbone.out_dim} "
                               f"channels, the model takes {self.feature_shape} features")
        self._backbone = backbone.to(self.device)
        return self._backbone

    def _features(self, observations: list[np.ndarray]) -> list[torch.Tensor]:
        """(1, L, C) float features per observation; images go through the backbone (each size
        is resized by the backbone itself)."""
        out = []
        for obs in observations:
            if obs.dtype == np.uint8:
                out.append(self.backbone()(torch.from_numpy(np.require(obs, requirements=['C', 'W']))).float())
            else:
                out.append(torch.from_numpy(obs).unsqueeze(0).to(self.device))
        return out

    # ------------------------------------------------------------------ planning
    @torch.no_grad()
    def plan(self, start, goal, horizon: int | None = None, labels: Sequence[str] | None = None) -> Plan:
        """Plan the steps from `start` to `goal` (images or feature vectors). `horizon`, when
        given, must be the model's T. `labels`: candidate label texts for open-vocabulary
        retrieval of the captions."""
        began = time.perf_counter()
        if horizon is not None and horizon != self.horizon:
            raise PlannerError(f"horizon {horizon} requested, but this model plans exactly {self.horizon} steps "
                               f"(its step queries are learned per position): use a model trained for T={horizon}")
        if labels is not None:
            labels = self._check_labels(labels)
        start_features, goal_features = self._features([self._check_observation(start, "start"),
                                                        self._check_observation(goal, "goal")])
        timings = {"backbone": self._ms(began)}

        mark = time.perf_counter()
        tokens = self.backend.run(ENCODER, {"start": start_features, "goal": goal_features})
        model, variant = self.model, self.model.config.variant
        logits = None
        if variant.planning != "llm_only":
            if model.uses_fusion:
                tokens["llm_hidden"], _ = model.llm(tokens["state_tokens"], tokens["step_tokens"])
            logits = self.backend.run(HEADS, tokens)["logits"]
        timings["heads"] = self._ms(mark)

        mark = time.perf_counter()
        captions: list[str] = []
        if self.captions or variant.planning == "llm_only":
            captions = model.llm.generate_captions(tokens["state_tokens"], tokens["step_tokens"])[0]
        if logits is None:
            logits = model.caption_logits([captions])
        timings["captions"] = self._ms(mark)

        mark = time.perf_counter()
        probs = logits.float().softmax(-1)
        ids = model.decode(probs, start_features, goal_features, self.transition,
                           "viterbi" if self.transition is not None else "argmax",
                           state_tokens=tokens["state_tokens"], step_tokens=tokens["step_tokens"])[0]
        probs = probs[0].cpu().numpy()
        timings["decode"] = self._ms(mark)
        open_labels = None
        if labels is not None:
            mark = time.perf_counter()
            open_labels = self._retrieve(captions, labels)
            timings["open_vocab"] = self._ms(mark)
        timings["total"] = self._ms(began)
        return Plan(
            horizon=self.horizon, step_ids=[int(i) for i in ids],
            labels=[model.step_labels[int(i)] for i in ids],
            scores=[float(probs[t, i]) for t, i in enumerate(ids)],
            captions=list(captions), open_vocab_labels=open_labels, backend=self.backend.name, timings_ms=timings,
        )

    def _check_labels(self, labels: Sequence[str]) -> list[str]:
        if isinstance(labels, str) or not all(isinstance(x, str) and x.strip() for x in labels) or not labels:
            raise PlannerError("labels: expected a non-empty list of non-empty label strings")
        if not self.model.config.variant.use_llm:
            raise PlannerError("labels given, but this model has no LLM branch: open-vocabulary labels are "
                               "retrieved from the LLM's captions")
        if not self.captions:
            raise PlannerError("labels given, but captions are switched off (captions=False / --no-captions): "
                               "open-vocabulary labels are retrieved from the captions")
        return list(labels)

    def _retrieve(self, captions: list[str], labels: list[str]) -> list[str]:
        from planllm_ros.model.openvocab import retrieve_labels

        return [labels[i] for i in retrieve_labels(captions, labels, self.model.text_encoder())]

    def _ms(self, since: float) -> float:
        """Milliseconds since `since`, after the GPU has finished what was queued (CUDA runs
        asynchronously: without the sync a stage's time would land in the next one)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return (time.perf_counter() - since) * 1000.0

    def close(self) -> None:
        """Release the backend (sessions, engines); the planner cannot plan afterwards."""
        self.backend.close()
