"""The dataset splits a config names: train, a validation split carved from train, and the test splits.

Model selection only ever sees "val"; test splits are for `planllm eval`. The tabletop world
generates its own disjoint "val" episodes; for the benchmarks (whose releases have only train
and test lists) "val" is a seeded carve of whole train *videos* (`data.val_fraction`), so no
video contributes windows to both train and val. Imported episode datasets (training.episodes)
are carved the same way from their episodes; their test split is the episodes they hold out.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from planllm_ros.model.config import VisualConfig
from training.datasets.base import ProcedureDataset
from training.train.config import DataConfig, ConfigError

TABLETOP_SPLITS = ("train", "val", "test", "novel", "paraphrase", "paraphrase-val")
BENCHMARK_SPLITS = ("train", "val", "test")


def available_splits(data: DataConfig) -> tuple[str, ...]:
    return TABLETOP_SPLITS if data.dataset == "tabletop" else BENCHMARK_SPLITS


def carve_videos(dataset: ProcedureDataset, fraction: float, seed: int) -> tuple[ProcedureDataset, ProcedureDataset]:
    """(train, val): a seeded `fraction` of the dataset's videos (at least one) goes to val."""
    videos = sorted({s.video for s in dataset.samples})
    if len(videos) < 2:
        raise ConfigError(f"{dataset.name}: cannot carve a validation split from {len(videos)} video(s)")
    order = np.random.default_rng(seed).permutation(len(videos))
    count = min(len(videos) - 1, max(1, round(fraction * len(videos))))
    val_videos = {videos[i] for i in order[:count]}
    keep = [s for s in dataset.samples if s.video not in val_videos]
    carved = [s for s in dataset.samples if s.video in val_videos]
    return (dataclasses.replace(dataset, split="train", samples=keep),
            dataclasses.replace(dataset, split="val", samples=carved))


def _load_tabletop(data: DataConfig, split: str, visual: VisualConfig) -> ProcedureDataset:
    from training.tabletop import load_tabletop

    samples = data.train_samples if split == "train" else data.eval_samples
    return load_tabletop(split, data.horizon, seed=data.seed, num_samples=samples, observation=data.observation,
                         cache_dir=data.cache_dir, backbone=visual.backbone or "mobilenet_v2", layer=visual.layer)


def _load_benchmark(data: DataConfig, split: str) -> ProcedureDataset:
    from training.datasets.benchmarks import load_benchmark

    if not data.root or not data.features_dir:
        raise ConfigError(
            f"data.dataset={data.dataset} needs data.root (annotations) and data.features_dir (per-video "
            f"features); got root={data.root!r}, features_dir={data.features_dir!r}"
        )
    source = "test" if split == "test" else "train"
    dataset = load_benchmark(data.dataset, data.root, data.features_dir, source, data.horizon,
                             descriptions=data.descriptions, skip_missing_features=data.skip_missing_features)
    if split == "test":
        return dataset
    train, val = carve_videos(dataset, data.val_fraction, data.seed)
    if split == "val":
        return val
    if data.train_samples is not None and data.train_samples < len(train):  # CPU-sized runs: a seeded subset
        keep = np.sort(np.random.default_rng(data.seed).permutation(len(train))[: data.train_samples])
        train = dataclasses.replace(train, samples=[train.samples[i] for i in keep])
    return train


def _load_episodes(data: DataConfig, split: str, visual: VisualConfig) -> ProcedureDataset:
    from training.episodes import backbone_arguments, load_episodes

    if not data.root:
        raise ConfigError("data.dataset=episodes needs data.root: a folder written by `planllm data episodes import`")
    dataset = load_episodes(data.root, "test" if split == "test" else "train", data.horizon, backbone_arguments(visual))
    if split == "test":
        return dataset
    train, val = carve_videos(dataset, data.val_fraction, data.seed)
    return val if split == "val" else train


def load_split(data: DataConfig, split: str, visual: VisualConfig | None = None) -> ProcedureDataset:
    """One split of the configured dataset; raises ConfigError for a split it does not have.
    `visual` (the model's, RunConfig.visual()) says which backbone block rendered datasets take
    their features from; None: the VisualConfig defaults."""
    if split not in available_splits(data):
        raise ConfigError(f"data.dataset={data.dataset} has no split {split!r}; expected one of {available_splits(data)}")
    visual = visual or VisualConfig()
    if data.dataset == "episodes":
        dataset = _load_episodes(data, split, visual)
    else:
        dataset = _load_tabletop(data, split, visual) if data.dataset == "tabletop" else _load_benchmark(data, split)
    if len(dataset) == 0:
        raise ConfigError(f"{data.dataset} split {split!r} has no samples at horizon {data.horizon}")
    return dataset
