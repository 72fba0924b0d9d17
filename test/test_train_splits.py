"""Model selection data: the benchmark val split is a seeded carve of whole train videos."""
from __future__ import annotations

import numpy as np
import pytest

from training.datasets.base import ProcedureDataset, Sample, StepVocabulary
from training.train.config import ConfigError, DataConfig
from training.train.splits import carve_videos, load_split


def _dataset(videos: int, windows: int) -> ProcedureDataset:
    samples = [Sample(np.zeros(4, np.float32), np.zeros(4, np.float32), np.array([0, 1, 2]), 0, f"v{v}")
               for v in range(videos) for _ in range(windows)]
    vocab = StepVocabulary(labels=("a", "b", "c"), tasks=("t",))
    return ProcedureDataset("unit", "train", 3, samples, vocab, [])


def test_carve_keeps_videos_whole_and_is_seeded():
    dataset = _dataset(videos=20, windows=3)
    train, val = carve_videos(dataset, fraction=0.2, seed=7)
    train_videos, val_videos = {s.video for s in train}, {s.video for s in val}
    assert len(val_videos) == 4 and not train_videos & val_videos
    assert len(train) + len(val) == len(dataset) and (train.split, val.split) == ("train", "val")
    assert {s.video for s in carve_videos(dataset, 0.2, seed=7)[1]} == val_videos
    assert {s.video for s in carve_videos(dataset, 0.2, seed=8)[1]} != val_videos


def test_carve_and_split_errors():
    with pytest.raises(ConfigError, match="cannot carve"):
        carve_videos(_dataset(videos=1, windows=5), 0.5, seed=0)
    with pytest.raises(ConfigError, match="has no split 'novel'"):
        load_split(DataConfig(dataset="niv"), "novel")
    with pytest.raises(ConfigError, match="needs data.root"):
        load_split(DataConfig(dataset="niv"), "train")
