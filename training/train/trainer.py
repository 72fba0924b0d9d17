"""The progressive two-stage trainer (paper Eq. 15).

Stage 1 freezes the LLM and the backbones and trains with L_MIM; stage 2 switches LoRA on and
trains L_MIM + L_ASC + L_SD. `training.train.stages.set_stage` decides what is trainable and which
loss terms the forward pass returns; this file only optimises `losses["total"]` over the
parameters that require a gradient. `train.stages: [2]` is one-stage training; the ablations
are model switches. Validation decodes the step logits of its one training pass per batch with
the inference pipeline's decoding, and the choice of the re-ranking weight runs the pipeline
itself (planllm_ros.model.pipeline), so both score what the robot plans.

Per stage (the optimiser, autocast and step in training/train/stages.py): AdamW (per-parameter-name
learning rates through `lr_overrides`), linear warm-up then cosine decay, gradient
accumulation, gradient clipping, bf16/fp16 autocast on GPU (fp16 with a GradScaler), DDP when
started by torchrun. Every `eval_every` optimiser steps (or once per
epoch) the model is scored on the validation split and a resumable checkpoint is written; the
best validation weights of a stage are restored at its end, and the final model directory
(`OUT/model`, a model folder: planllm_ros.model.folder) holds
the best weights of the last stage.

Resuming is exact: the epoch's sample order is a function of (seed, epoch), the checkpoint
records how far into the epoch the run got, and it stores every process's RNG state, the
optimiser, scheduler and scaler state, the best weights so far and the best score.
"""
from __future__ import annotations

import copy
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.folder import CHECKPOINT_DIR, MODEL_DIR, STATE_MODEL_FILE, save_train_config, save_transition
from planllm_ros.model.graphs import TorchGraphs
from planllm_ros.model.pipeline import decode_steps, plan_batch
from planllm_ros.model.planllm import PlanLLMOutput
from training.datasets.base import ProcedureDataset, collate, transition_matrix
from training.datasets.state_labels import StateLabeller, state_model_of
from training.evaluation.metrics import procedure_metrics
from training.train import distributed
from training.train.checkpoint import CheckpointError, install_directory, load_checkpoint, save_checkpoint, temporary_sibling
from training.train.config import RunConfig, StageConfig, from_tree
from training.train.horizon import SAMPLES_PER_HORIZON, calibrate
from training.train.llm_pretrain import pretrain_builtin_llm
from training.train.logging_utils import RunLogger, training_record, write_training_record
from training.train.splits import load_split
from training.train.stages import autocast, grad_scaler, optimizer_step, set_stage, stage_optimizer


def effective_stages(config: RunConfig, use_mim: bool) -> list[int]:
    """The configured stages, minus stage 1 for variants without MIM (stage 1 trains only L_MIM)."""
    return [s for s in config.train.stages if s != 1 or use_mim] or [2]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def build_model(config: RunConfig, dataset: ProcedureDataset, device: torch.device, states=None):
    """A freshly initialised PlanLLM for `dataset`'s vocabulary, its built-in LLM pretrained on
    the dataset's plans (seeded: the same config and data always give the same initial
    weights, which resuming relies on), at stage 1's trainable parameters. `states`: the
    step-effect model whose propositions a state head reads (models with one)."""
    from planllm_ros.model.config import PlanLLMConfig
    from planllm_ros.model.descriptions import embed_descriptions
    from planllm_ros.model.planllm import PlanLLM
    from planllm_ros.model.text_encoder import TextEncoder

    model_config = PlanLLMConfig.from_dict(config.model_config_dict(dataset.vocab.num_steps))
    text = model_config.text
    encoder = TextEncoder(text.encoder, text.checkpoint, text.open_clip_model)
    texts = [d.text() for d in dataset.descriptions]
    embeddings = embed_descriptions(texts, encoder, cache_dir=config.data.cache_dir)
    state_embeddings = (embed_descriptions(list(states.sentences), encoder, cache_dir=config.data.cache_dir)
                        if states is not None else None)
    seed_everything(config.train.seed)
    model = PlanLLM(model_config, embeddings, list(dataset.vocab.labels), texts, state_embeddings=state_embeddings)
    pretrain_builtin_llm(model, [[int(i) for i in steps] for steps in dataset.sequences()])
    if model_config.variant.use_mim:
        set_stage(model, 1)
    return model.to(device)


def _rng_state(ctx: distributed.Context) -> dict[str, Any]:
    """Every process's torch RNG state (gathered on rank 0), plus rank 0's numpy / python state."""
    own = torch.get_rng_state().to(torch.int64).unsqueeze(0)
    state: dict[str, Any] = {"torch": distributed.all_gather_rows(ctx, own).to(torch.uint8)}
    if ctx.device.type == "cuda":
        cuda = torch.cuda.get_rng_state(ctx.device).to(torch.int64).unsqueeze(0)
        state["cuda"] = distributed.all_gather_rows(ctx, cuda).to(torch.uint8)
    state["numpy"] = np.random.get_state()
    state["python"] = random.getstate()
    return state


def _set_rng_state(ctx: distributed.Context, state: dict[str, Any]) -> None:
    if state["torch"].shape[0] != ctx.world_size:
        raise CheckpointError(
            f"the checkpoint was written by {state['torch'].shape[0]} process(es); resume it with the same number "
            f"(now {ctx.world_size})"
        )
    torch.set_rng_state(state["torch"][ctx.rank].clone())
    if ctx.device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"][ctx.rank].clone(), ctx.device)
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _lr_factor(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@dataclass
class Progress:
    """Where a run is: resumable position plus model-selection bookkeeping."""

    stage_index: int = 0  # index into config.train.stages
    epoch: int = 0
    batches_done: int = 0  # micro-batches consumed in the current epoch
    global_step: int = 0  # optimiser steps over all stages
    stage_step: int = 0  # optimiser steps in the current stage
    best_score: float | None = None
    best_step: int = -1
    finished: bool = False  # every stage done; only OUT/model remains to be written

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Trainer:
    def __init__(self, config: RunConfig, out_dir: str | Path, ctx: distributed.Context | None = None,
                 record: dict[str, Any] | None = None):
        """`record`: this process's training record (training_record), kept in every checkpoint
        so that a run resumed by other code still names this code."""
        self.config = config
        self.out_dir = Path(out_dir)
        self.ctx = ctx or distributed.Context()
        self.is_main = self.ctx.is_main
        self.train_set = load_split(config.data, "train", config.visual())
        self.val_set = load_split(config.data, "val", config.visual())
        self.transition = transition_matrix(self.train_set.sequences(), self.train_set.vocab.num_steps)
        self.states = self.labeller = None
        if config.model.get("states", {}).get("enabled", False):
            self.states = state_model_of(self.train_set)  # a function of the training split: a resumed run rebuilds the same
            self.labeller = StateLabeller(self.states)
        self.model = build_model(config, self.train_set, self.ctx.device, self.states)
        if self.model.config.variant.use_llm:
            labels = self.model.step_labels
            plans = {tuple(int(i) for i in steps) for steps in self.train_set.sequences()}
            self.model.llm.check_caption_budget([labels[i] for i in plan] for plan in plans)
        self.stages = effective_stages(config, self.model.config.variant.use_mim)
        if self.stages != config.train.stages and self.is_main:
            print(f"variant.use_mim=false: stage 1 trains only L_MIM, so this run trains stages {self.stages}")
        self.logger = RunLogger(self.out_dir, enabled=self.is_main)
        self.progress = Progress()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._resume_state: dict[str, Any] | None = None
        # training records (training_record) of the earlier processes whose work the checkpoint
        # holds, oldest first: a resumed run was trained by more than one checkout of the code
        self.earlier_segments: list[dict[str, Any]] = []
        self.record = record

    # ---------------------------------------------------------------- set-up
    def resume(self) -> bool:
        """Load OUT/checkpoint if it exists; False when there is nothing to resume."""
        path = self.out_dir / CHECKPOINT_DIR
        if not path.exists() and not path.with_name(f".old-{path.name}").exists():
            return False
        checkpoint = load_checkpoint(path)
        saved = from_tree(checkpoint.config, str(path / "config.json"))
        if saved.to_dict() != self.config.to_dict():
            raise CheckpointError(
                f"{path}: the checkpoint was written with a different config; resume with the same --config and "
                f"--set values (or start a new --out directory)"
            )
        state = checkpoint.state
        self.progress = Progress(**state["progress"])
        set_stage(self.model, self.stages[self.progress.stage_index])
        self.model.load_trainable_state_dict({k: v.to(self.ctx.device) for k, v in checkpoint.weights.items()})
        _set_rng_state(self.ctx, state["rng"])  # after set_stage: the state is the one saved after it
        self.best_weights = state.get("best_weights")
        # a checkpoint written before checkpoints kept their records: its code is unknown
        self.earlier_segments = state.get("segments") or [{"note": "an unrecorded commit"}]
        self._resume_state = state
        self.logger.truncate_after(self.progress.global_step)
        return True

    def _epoch_order(self, epoch: int) -> list[int]:
        sampler = DistributedSampler(self.train_set, num_replicas=self.ctx.world_size, rank=self.ctx.rank,
                                     shuffle=True, seed=self.config.train.seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    def _batches(self, indices: list[int], dataset: ProcedureDataset) -> DataLoader:
        """Batches in the given order. The loader gets its own generator: by default every new
        iterator draws a seed from the global RNG, which would make a resumed run's dropout differ."""
        return DataLoader(Subset(dataset, indices), batch_size=self.config.train.batch_size, shuffle=False,
                          collate_fn=collate, num_workers=self.config.train.num_workers,
                          generator=torch.Generator().manual_seed(self.config.train.seed))

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.ctx.device, non_blocking=True) for k, v in batch.items()}

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean val losses and closed-set metrics, over every process's shard of the val split.
        One model pass per batch gives both (`_val_plans`). It runs without autocast, as
        inference does, so the metrics score the precision the robot plans in."""
        self.model.eval()
        indices = list(range(self.ctx.rank, len(self.val_set), self.ctx.world_size))
        loss_sums: dict[str, float] = {}
        count = 0
        preds, gts = [], []
        policy = self._policy()
        for batch in self._batches(indices, self.val_set):
            batch = self._to_device(batch)
            out = self.model(batch["start"], batch["goal"], batch["steps"], self._state_labels(batch))
            n = batch["steps"].shape[0]
            for name, value in out.losses.items():
                loss_sums[name] = loss_sums.get(name, 0.0) + float(value) * n
            count += n
            preds.append(torch.as_tensor(self._val_plans(batch, out, policy)).long())
            gts.append(batch["steps"].cpu())
        names = sorted(loss_sums)
        totals = distributed.all_reduce_sum(self.ctx, torch.tensor([loss_sums[n] for n in names] + [count]))
        pred = distributed.all_gather_rows(self.ctx, torch.cat(preds) if preds else torch.zeros(0, self.config.data.horizon, dtype=torch.long))
        gt = distributed.all_gather_rows(self.ctx, torch.cat(gts) if gts else torch.zeros(0, self.config.data.horizon, dtype=torch.long))
        values = {f"loss_{n}" if n != "total" else "loss": float(totals[i] / totals[-1]) for i, n in enumerate(names)}
        values.update(procedure_metrics(pred.numpy(), gt.numpy()))
        self.model.train()
        return values

    def _policy(self) -> DecodingPolicy:
        """How validation decodes: train.decode, with this run's transition matrix and step-effect model."""
        return DecodingPolicy.for_model(self.model, self.transition, states=self.states, method=self.config.train.decode,
                                        captions=False)

    def _val_plans(self, batch: dict[str, torch.Tensor], out: PlanLLMOutput, policy: DecodingPolicy) -> np.ndarray:
        """Closed-set plans (B, T) of a val batch: the pipeline's decoding of the training pass's
        step logits. They are the logits inference computes: the pass reads h at the prompt's
        step positions, and the causal LLM reads those before the ground truth appended after
        the prompt. LLM-only models score steps from generated captions, which the training
        pass does not generate, so they plan through plan_batch."""
        if out.logits is None:
            return plan_batch(self.model, TorchGraphs(self.model), batch["start"], batch["goal"], policy).step_ids
        probs = out.logits.float().softmax(-1).cpu()
        states = tuple(s.float().cpu().numpy() for s in out.states) if out.states is not None else None
        return decode_steps(self.model, probs, out.state_tokens, out.step_tokens, policy, states=states)[0]

    def _state_labels(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The batch's state labels (models with a state head), from its steps, the video's steps
        around them and the descriptions."""
        if self.labeller is None:
            return None
        labels = self.labeller(batch["steps"], batch.get("before"), batch.get("after"))
        return tuple(part.to(self.ctx.device) for part in labels)

    def _improved(self, stage: StageConfig, values: dict[str, float]) -> bool:
        score = values["loss"] if stage.select == "loss" else values[stage.select]
        best = self.progress.best_score
        better = best is None or (score < best if stage.select == "loss" else score > best)
        if better:
            self.progress.best_score = score
            self.progress.best_step = self.progress.global_step
        return better

    # ---------------------------------------------------------------- checkpoints
    def _save(self, optimizer, scheduler, scaler) -> None:
        rng = _rng_state(self.ctx)  # collective: every rank takes part
        if self.is_main:
            state = {
                "progress": self.progress.as_dict(),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
                "rng": rng,
                "best_weights": self.best_weights,
                "segments": self.earlier_segments + ([self.record] if self.record is not None else []),
            }
            save_checkpoint(self.out_dir / CHECKPOINT_DIR, self.model.trainable_state_dict(), state,
                            self.config.to_dict())
        distributed.barrier(self.ctx)

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.trainable_state_dict().items()}

    # ---------------------------------------------------------------- training
    def _steps_per_epoch(self) -> int:
        per_rank = math.ceil(len(self.train_set) / self.ctx.world_size)
        return math.ceil(math.ceil(per_rank / self.config.train.batch_size) / self.config.train.grad_accum)

    def _train_stage(self, stage_number: int) -> None:
        train = self.config.train
        stage = train.stage(stage_number)
        set_stage(self.model, stage_number)
        self.model.train()
        optimizer = stage_optimizer(self.model, stage)
        total_steps = stage.epochs * self._steps_per_epoch()
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(stage.warmup_steps, total_steps))
        scaler = grad_scaler(self.ctx.device, train.precision)
        resumed = self._resume_state
        if resumed is not None and resumed["optimizer"] is not None:
            optimizer.load_state_dict(resumed["optimizer"])
            scheduler.load_state_dict(resumed["scheduler"])
            if resumed["scaler"] is not None:
                scaler.load_state_dict(resumed["scaler"])
        self._resume_state = None
        network = self.model
        if self.ctx.distributed:
            network = DistributedDataParallel(self.model, find_unused_parameters=train.find_unused_parameters,
                                              device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        eval_every = train.eval_every or self._steps_per_epoch()
        while self.progress.epoch < stage.epochs:
            order = self._epoch_order(self.progress.epoch)
            epoch_batches = math.ceil(len(order) / train.batch_size)
            start = self.progress.batches_done * train.batch_size
            batches = list(self._batches(order[start:], self.train_set))
            groups = [batches[i:i + train.grad_accum] for i in range(0, len(batches), train.grad_accum)]
            bar = tqdm(groups, desc=f"stage {stage_number} epoch {self.progress.epoch + 1}/{stage.epochs}",
                       disable=not (self.is_main and train.progress), leave=False, dynamic_ncols=True)
            for group in bar:
                sums: dict[str, float] = {}
                for i, batch in enumerate(group):
                    batch = self._to_device(batch)
                    sync = i == len(group) - 1 or not self.ctx.distributed
                    with (nullcontext() if sync else network.no_sync()), autocast(self.ctx.device, train.precision):
                        out = network(batch["start"], batch["goal"], batch["steps"], self._state_labels(batch))
                        loss = out.losses["total"] / len(group)
                    scaler.scale(loss).backward()
                    for name, value in out.losses.items():
                        sums[name] = sums.get(name, 0.0) + float(value.detach()) / len(group)
                optimizer_step(optimizer, scaler, trainable, train.max_grad_norm)
                scheduler.step()
                self.progress.batches_done += len(group)
                self.progress.global_step += 1
                self.progress.stage_step += 1
                bar.set_postfix(loss=f"{sums.get('total', 0.0):.4f}")
                if self.progress.stage_step % train.log_every == 0:
                    self._log_train(stage_number, sums, scheduler.get_last_lr()[-1])
                if self.progress.stage_step % eval_every == 0 or self.progress.batches_done >= epoch_batches:
                    if self.progress.batches_done >= epoch_batches:
                        self.progress.epoch += 1
                        self.progress.batches_done = 0
                    self._evaluate_and_checkpoint(stage_number, stage, optimizer, scheduler, scaler)
            bar.close()
        self._finish_stage(stage_number)

    def _log_train(self, stage_number: int, sums: dict[str, float], lr: float) -> None:
        names = sorted(sums)
        mean = distributed.all_reduce_sum(self.ctx, torch.tensor([sums[n] for n in names])) / self.ctx.world_size
        values = {("loss" if n == "total" else f"loss_{n}"): float(mean[i]) for i, n in enumerate(names)}
        values["lr"] = lr
        self.logger.log(stage_number, self.progress.epoch, self.progress.global_step, "train", values)

    def _evaluate_and_checkpoint(self, stage_number: int, stage: StageConfig, optimizer, scheduler, scaler) -> None:
        values = self.validate()
        self.logger.log(stage_number, self.progress.epoch, self.progress.global_step, "val", values)
        if self._improved(stage, values):
            self.best_weights = self._snapshot()
        self._save(optimizer, scheduler, scaler)

    def _finish_stage(self, stage_number: int) -> None:
        """Restore the stage's best val weights, plot it, and checkpoint the stage boundary.

        The next stage is switched on before the checkpoint (stage 2 adds freshly initialised
        LoRA adapters), so a run resumed from here has the very adapters and RNG state that an
        uninterrupted run continues with."""
        if self.best_weights is not None:
            self.model.load_trainable_state_dict({k: v.to(self.ctx.device) for k, v in self.best_weights.items()})
        if self.is_main:
            self.logger.plot_stage(stage_number)
        last = self.progress.stage_index == len(self.stages) - 1
        if not last:
            set_stage(self.model, self.stages[self.progress.stage_index + 1])
        self.progress = Progress(stage_index=self.progress.stage_index + (0 if last else 1),
                                 global_step=self.progress.global_step, finished=last)
        self.best_weights = None
        self._save(None, None, None)

    def fit(self) -> Path:
        """Train every configured stage (continuing a resumed run) and write OUT/model."""
        started = time.monotonic()
        while not self.progress.finished:
            self._train_stage(self.stages[self.progress.stage_index])
        if self.is_main:
            self.choose_llm_weight()
            self.choose_horizon()
            self.save_model(self.out_dir / MODEL_DIR)
            print(f"trained stages {self.stages} in {time.monotonic() - started:.1f} s "
                  f"({self.progress.global_step} optimiser steps)")
        self.logger.close()
        distributed.barrier(self.ctx)
        return self.out_dir / MODEL_DIR

    @torch.no_grad()
    def choose_llm_weight(self) -> float | None:
        """Set model.config.decoding.llm_weight to the train.llm_weights value with the best val SR
        (the smallest on ties; candidates and both scores are computed once). None when the model
        has nothing to re-rank with or no weights are configured."""
        model, weights = self.model, sorted(self.config.train.llm_weights)
        policy = self._policy()
        if not weights or not model.can_rerank or not (policy.uses_viterbi or policy.method == "grounded"):
            return None
        model.eval()
        graphs, candidates, truth = TorchGraphs(model), [], []
        for batch in self._batches(list(range(len(self.val_set))), self.val_set):
            batch = self._to_device(batch)
            out = plan_batch(model, graphs, batch["start"], batch["goal"], policy, keep_candidates=True)
            candidates.append(out.candidates)
            truth.append(batch["steps"].cpu().numpy())
        truth = np.concatenate(truth)
        success = {w: float(np.mean((np.concatenate([c.choose(w) for c in candidates]) == truth).all(1))) * 100
                   for w in weights}
        best = max(weights, key=lambda w: (success[w], -w))
        model.config.decoding.llm_weight = best
        self.logger.log(self.stages[-1], self.progress.epoch, self.progress.global_step, "val",
                        {f"sr_llm_weight_{w:g}": v for w, v in success.items()})
        print("decoding.llm_weight on val: " + ", ".join(f"{w:g} -> SR {v:.2f}" for w, v in success.items())
              + f"; chose {best:g}")
        return best

    def choose_horizon(self) -> float | None:
        """Fit how a model with a state head chooses its number of steps when a caller gives none
        (model.config.decoding.horizon) on val windows of every length (training.train.horizon);
        returns the val horizon accuracy, None for models without a state head."""
        if self.states is None:
            return None
        samples = min(SAMPLES_PER_HORIZON, self.config.data.eval_samples or SAMPLES_PER_HORIZON)
        self.model.eval()
        choice, accuracy = calibrate(self.model, TorchGraphs(self.model), self._policy(), self.config.data, samples,
                                     self.model.config.visual)
        self.model.config.decoding.horizon = choice
        print(f"decoding.horizon on val ({samples} windows per number of steps): horizon accuracy {accuracy:.1f} %")
        return accuracy

    def save_model(self, path: Path) -> Path:
        """The model folder: `save_pretrained` + the training config + the train transition matrix, atomically."""
        tmp = temporary_sibling(path)
        self.model.config.decoding.method = self.config.train.decode  # what validation chose with is what the folder plans with
        self.model.save_pretrained(tmp)
        save_train_config(tmp, self.config.to_dict())
        save_transition(tmp, self.transition)
        if self.states is not None:
            self.states.save(tmp / STATE_MODEL_FILE)
        return install_directory(tmp, path)


def train(config: RunConfig, out_dir: str | Path, resume: bool = False, device: str | None = None) -> Path:
    """Run (or resume) a training run in this process group; returns OUT/model."""
    if not resume and (Path(out_dir) / CHECKPOINT_DIR).exists():
        raise CheckpointError(f"{out_dir} already holds a run: pass --resume to continue it, or choose another --out")
    record = training_record()  # the code that trains, taken before it starts
    ctx = distributed.init(device)
    try:
        trainer = Trainer(copy.deepcopy(config), out_dir, ctx, record)
        if resume and not trainer.resume() and ctx.is_main:
            print(f"--resume: no checkpoint in {Path(out_dir) / CHECKPOINT_DIR}; starting from scratch")
        model_dir = trainer.fit()
        if ctx.is_main:
            write_training_record(model_dir, {**record, "resumed": resume, "earlier_segments": trainer.earlier_segments})
        return model_dir
    finally:
        distributed.shutdown()
