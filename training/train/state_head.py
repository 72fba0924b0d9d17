"""Fit a state head and its step-effect model onto a trained model folder.

The state head reads only the frozen backbone tokens and its loss reaches nothing else
(planllm_ros.model.planllm.PlanLLM.add_state_head), so fitting it onto a finished model gives
the head that joint training (`planllm train` with states.enabled) would give, without
training the rest again. Everything it learns from is what a real dataset has: the training
split's step labels and its step descriptions' before/after sentences
(training.datasets.state_labels). The head of the epoch with the lowest val state loss is kept.

Afterwards the decoding is chosen on val: grounded decoding replaces Viterbi only if its val SR
is at least Viterbi's (decoding.method in the folder's config; the grounded weights stay as
configured), and the choice of the number of steps, for callers who give none, is fitted on val
windows of every length (decoding.horizon, training.train.horizon; `fit_horizon_choice` refits
it alone on a folder that has a state head). The new folder holds everything the old one had except exported graphs, which
no longer match the model: run `planllm export` on it.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from planllm_ros.export.model_card import read_training_record
from planllm_ros.model.decoding import DecodingPolicy
from planllm_ros.model.descriptions import embed_descriptions
from planllm_ros.model.folder import STATE_MODEL_FILE, TRAIN_CONFIG_FILE, TRANSITION_FILE, load_model_folder
from planllm_ros.model.graphs import TorchGraphs
from planllm_ros.model.losses import state_loss
from planllm_ros.model.pipeline import plan_batch
from training.datasets.base import ProcedureDataset, collate
from training.datasets.state_labels import StateLabeller, state_model_of
from training.train.checkpoint import install_directory, temporary_sibling
from training.train.config import from_tree
from training.train.horizon import SAMPLES_PER_HORIZON, calibrate
from training.train.logging_utils import training_record, write_training_record
from training.train.splits import load_split


@dataclass
class StateHeadReport:
    """What fitting measured on val: the state loss per epoch, the kept epoch, the error of the
    head on the val labels the descriptions determine, and SR with either decoding."""

    val_losses: list[float]
    best_epoch: int
    val_label_error: float
    val_sr: dict[str, float]
    method: str
    horizon_accuracy: float | None = None  # val, percent, windows of every length up to max_horizon


def _observations(dataset: ProcedureDataset) -> tuple[torch.Tensor, ...]:
    """start, goal, steps, and the video's steps before and after each window."""
    batch = collate(dataset.samples)
    return batch["start"].float(), batch["goal"].float(), batch["steps"], batch["before"], batch["after"]


def _labelled(model, labeller: StateLabeller, start, goal, steps, before, after, batch_size: int):
    """Yield (logits over start and goal images, their labels) per batch, in order."""
    for i in range(0, len(steps), batch_size):
        labels = labeller(steps[i:i + batch_size], before[i:i + batch_size], after[i:i + batch_size])
        logits = torch.cat([model.read_states(start[i:i + batch_size]), model.read_states(goal[i:i + batch_size])])
        yield logits, torch.cat(labels)


@torch.no_grad()
def _val_loss(model, labeller, data, batch_size: int) -> tuple[float, float]:
    """Mean state loss and error rate over the known val labels."""
    model.eval()
    loss_sum, wrong, known = 0.0, 0, 0
    for logits, labels in _labelled(model, labeller, *data, batch_size):
        mask = labels >= 0
        loss_sum += float(state_loss(logits, labels)) * int(mask.sum())
        wrong += int(((logits[mask] > 0).long() != labels[mask].long()).sum())
        known += int(mask.sum())
    model.train()
    return loss_sum / max(known, 1), wrong / max(known, 1)


@torch.no_grad()
def _val_sr(model, policy: DecodingPolicy, data, batch_size: int) -> float:
    start, goal, steps = data[:3]
    graphs, hits = TorchGraphs(model), 0
    for i in range(0, len(steps), batch_size):
        ids = plan_batch(model, graphs, start[i:i + batch_size], goal[i:i + batch_size], policy).step_ids
        hits += int((ids == steps[i:i + batch_size].numpy()).all(1).sum())
    return 100.0 * hits / len(steps)


def fit_state_head(model_dir: str | Path, out_dir: str | Path, *, epochs: int = 12, lr: float = 1e-3,
                   batch_size: int = 64, seed: int = 0, train_samples: int | None = None,
                   progress: bool = True) -> tuple[Path, StateHeadReport]:
    """Fit a state head onto the model folder `model_dir` and write the result to `out_dir`.
    train_samples: fit on that many training samples of the model's own training stream (the
    first ones, so a subset of what the model trained on; None: the model's own number). The new
    folder's training record names the code that fitted the head and keeps the base model's."""
    record = training_record()  # the code that fits, taken before it starts
    folder = load_model_folder(model_dir, require=(TRANSITION_FILE, TRAIN_CONFIG_FILE))
    config = from_tree(folder.train_config, str(Path(folder.path) / TRAIN_CONFIG_FILE))
    if train_samples is not None:
        config.data.train_samples = int(train_samples)
    model = folder.model.float().cpu()
    train_set = load_split(config.data, "train", model.config.visual)
    val_set = load_split(config.data, "val", model.config.visual)
    states = state_model_of(train_set)
    torch.manual_seed(seed)
    model.add_state_head(embed_descriptions(list(states.sentences), model.text_encoder(),
                                            cache_dir=config.data.cache_dir).clone())
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("state_head."))
    optimizer = torch.optim.AdamW(model.state_head.parameters(), lr=lr, weight_decay=0.01)
    labeller = StateLabeller(states)
    train_data, val_data = _observations(train_set), _observations(val_set)
    generator = torch.Generator().manual_seed(seed)
    losses, best, best_weights = [], None, None
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(train_data[2]), generator=generator)
        shuffled = tuple(x[order] for x in train_data)
        bar = tqdm(range(0, len(order), batch_size), desc=f"state head epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        batches = _labelled(model, labeller, *shuffled, batch_size)
        for _ in bar:
            logits, labels = next(batches)
            loss = state_loss(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.4f}")
        val_loss, _ = _val_loss(model, labeller, val_data, 256)
        losses.append(val_loss)
        if best is None or val_loss < losses[best]:
            best, best_weights = epoch, {k: v.clone() for k, v in model.state_head.state_dict().items()}
        if progress:
            print(f"state head epoch {epoch + 1}: val state loss {val_loss:.4f}")
    model.state_head.load_state_dict(best_weights)
    model.eval()
    _, label_error = _val_loss(model, labeller, val_data, 256)

    sr = {}
    for method in ("viterbi", "grounded"):
        policy = DecodingPolicy.for_model(model, folder.transition, states=states, method=method, captions=False)
        sr[method] = _val_sr(model, policy, val_data, 100)
    method = "grounded" if sr["grounded"] >= sr["viterbi"] else "viterbi"
    model.config.decoding.method = method
    policy = DecodingPolicy.for_model(model, folder.transition, states=states, captions=False)
    model.config.decoding.horizon, accuracy = calibrate(model, TorchGraphs(model), policy, config.data,
                                                        visual=model.config.visual)

    report = StateHeadReport(losses, best, label_error, sr, method, accuracy)
    return _write_folder(model, folder, states, out_dir, {**record, "state_head": {
        "fitted_onto": str(folder.path), "train_samples": len(train_set), "epochs": epochs, "kept_epoch": best + 1,
        "val_sr": sr, "val_horizon_accuracy": accuracy, "base_training": read_training_record(folder.path)}}), report


def fit_horizon_choice(model_dir: str | Path, out_dir: str | Path,
                       samples: int = SAMPLES_PER_HORIZON) -> tuple[Path, float]:
    """Refit only the choice of the number of steps (decoding.horizon) of a folder with a state
    head, on val windows of every length; the rest of the folder is copied as it is. Returns the
    new folder and the val horizon accuracy (percent)."""
    record = training_record()
    folder = load_model_folder(model_dir, require=(TRANSITION_FILE, TRAIN_CONFIG_FILE, STATE_MODEL_FILE))
    config = from_tree(folder.train_config, str(Path(folder.path) / TRAIN_CONFIG_FILE))
    model = folder.model.float().cpu().eval()
    policy = DecodingPolicy.for_model(model, folder.transition, states=folder.states, captions=False)
    model.config.decoding.horizon, accuracy = calibrate(model, TorchGraphs(model), policy, config.data, samples,
                                                        model.config.visual)
    base = read_training_record(folder.path) or {}
    return _write_folder(model, folder, folder.states, out_dir, {**base, "horizon_choice": {
        **record, "fitted_onto": str(folder.path), "samples_per_horizon": samples,
        "val_horizon_accuracy": accuracy}}), accuracy


def _write_folder(model, folder, states, out_dir: str | Path, record: dict) -> Path:
    """The model, the source folder's transition matrix and train config, the step-effect model
    and the training record, installed at `out_dir` at once (no half-written folder)."""
    out_dir = Path(out_dir)
    tmp = temporary_sibling(out_dir)
    model.save_pretrained(tmp)
    for name in (TRANSITION_FILE, TRAIN_CONFIG_FILE):
        shutil.copy2(Path(folder.path) / name, tmp / name)
    states.save(tmp / STATE_MODEL_FILE)
    write_training_record(tmp, record)
    return install_directory(tmp, out_dir)


def summary(report: StateHeadReport) -> str:
    """The report as lines for the terminal."""
    return "\n".join([
        "val state loss per epoch: " + ", ".join(f"{v:.4f}" for v in report.val_losses)
        + f" (kept epoch {report.best_epoch + 1})",
        f"val error on the labels the descriptions determine: {100 * report.val_label_error:.2f} %",
        "val SR: " + ", ".join(f"{k} {v:.2f}" for k, v in report.val_sr.items()) + f"; decoding.method = {report.method}",
        f"val horizon accuracy when the model chooses the number of steps: {report.horizon_accuracy:.1f} %",
        "exported graphs are not carried over: run `planllm export` on the new folder",
    ])
