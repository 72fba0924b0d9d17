"""CrossTask, COIN and NIV as `ProcedureDataset`s: annotations plus per-video feature files.

Sampling follows SCHEMA (the protocol behind the published PlanLLM numbers): every window of T
consecutive annotated steps of a video is one sample (annotation-file order, repeats kept);
its start state is the mean feature of frames [s-1, s+2) around the first step's start second,
its goal state the mean around the last step's end second (clipped at the video's ends). A
window is dropped when any of its steps starts before 0 or ends at or after the last feature
row. Feature layout and encodings: see training.datasets.features.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from training.datasets import coin, crosstask, niv
from training.datasets.annotations import VideoAnnotation, check_split
from training.datasets.base import (
    DatasetError,
    ProcedureDataset,
    Sample,
    StepDescription,
    StepVocabulary,
)
from training.datasets.descriptions import label_descriptions, load_schema_descriptions
from training.datasets.features import SIMULATED_MARKER, feature_file, read_features, state_feature

log = logging.getLogger(__name__)

READERS: dict[str, ModuleType] = {"crosstask": crosstask, "coin": coin, "niv": niv}


@dataclass(frozen=True)
class LoadReport:
    """How a split turned into samples (what `planllm data stats` prints)."""

    videos: int  # listed in the split file
    videos_without_features: int  # skipped (only with skip_missing_features)
    windows: int  # all windows of T consecutive steps of the videos with features
    dropped: int  # windows outside their video's features
    feature_dim: int | None
    simulated: bool  # the features directory holds simulator output, not video features


def reader(name: str) -> ModuleType:
    if name not in READERS:
        raise ValueError(f"unknown benchmark {name!r}: expected one of {', '.join(READERS)}")
    return READERS[name]


def read_benchmark(name: str, root: str | Path, split: str) -> tuple[StepVocabulary, list[VideoAnnotation]]:
    """The vocabulary and one split's annotated videos, without touching features."""
    check_split(split)
    module, root = reader(name), Path(root)
    vocab = module.read_vocabulary(root)
    return vocab, module.read_split(root, split, vocab)


def benchmark_descriptions(name: str, root: str | Path, vocab: StepVocabulary,
                           path: str | Path | None = None) -> list[StepDescription]:
    """Descriptions from `path`, else from the dataset's descriptors file in `root`; when neither
    is given or present, the labels themselves (with a warning)."""
    if path is not None:
        return load_schema_descriptions(path, vocab)
    default = Path(root) / reader(name).DESCRIPTIONS_FILE
    if default.is_file():
        return load_schema_descriptions(default, vocab)
    log.warning("%s not found: step descriptions are the bare labels", default)
    return label_descriptions(vocab)


def window_samples(video: VideoAnnotation, features: np.ndarray, horizon: int) -> tuple[list[Sample], int]:
    """All windows of `horizon` consecutive steps of one video, and how many were dropped
    because a step lies outside the features."""
    segments = video.segments
    steps = np.array([s.step for s in segments], dtype=np.int64)
    inside = [0 <= s.start and s.end < features.shape[0] for s in segments]
    samples = []
    dropped = 0
    for first in range(len(segments) - horizon + 1):
        window = segments[first:first + horizon]
        if not all(inside[first:first + horizon]):
            dropped += 1
            continue
        samples.append(Sample(
            start=state_feature(features, window[0].start),
            goal=state_feature(features, window[-1].end),
            steps=steps[first:first + horizon],
            task=video.task,
            video=video.video,
            before=steps[:first],
            after=steps[first + horizon:],
        ))
    return samples, dropped


def load_benchmark_with_report(name: str, root: str | Path, features_dir: str | Path, split: str, horizon: int,
                               descriptions: str | Path | None = None,
                               skip_missing_features: bool = False) -> tuple[ProcedureDataset, LoadReport]:
    """`load_benchmark` plus the counts behind it."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise DatasetError(f"{features_dir}: features directory not found")
    simulated = (features_dir / SIMULATED_MARKER).is_file()
    if simulated:
        log.warning("%s holds SIMULATED features: results on them do not compare with published ones", features_dir)
    vocab, videos = read_benchmark(name, root, split)
    samples: list[Sample] = []
    missing = windows = dropped = 0
    dim: int | None = None
    for video in videos:
        path = feature_file(features_dir, video.feature_stem)
        if path is None:
            if not skip_missing_features:
                raise DatasetError(f"{features_dir / video.feature_stem}.npz (or .npy): feature file not found "
                                   f"for video {video.video!r} of the {name} {split} split")
            missing += 1
            continue
        features = read_features(path)
        if dim is not None and features.shape[1] != dim:
            raise DatasetError(f"{path}: {features.shape[1]}-d features, but earlier videos have {dim}-d")
        dim = features.shape[1]
        video_samples, video_dropped = window_samples(video, features, horizon)
        samples.extend(video_samples)
        windows += len(video_samples) + video_dropped
        dropped += video_dropped
    if missing:
        log.warning("%s %s: %d of %d videos have no feature file in %s and were skipped",
                    name, split, missing, len(videos), features_dir)
    if dropped:
        log.info("%s %s: dropped %d of %d windows outside their video's features", name, split, dropped, windows)
    dataset = ProcedureDataset(name=name, split=split, horizon=horizon, samples=samples, vocab=vocab,
                               descriptions=benchmark_descriptions(name, root, vocab, descriptions))
    return dataset, LoadReport(len(videos), missing, windows, dropped, dim, simulated)


def load_benchmark(name: str, root: str | Path, features_dir: str | Path, split: str, horizon: int,
                   descriptions: str | Path | None = None, skip_missing_features: bool = False) -> ProcedureDataset:
    """One split of CrossTask / COIN / NIV as T-step samples with start/goal features.

    `root` holds the dataset's annotation files (e.g. ../shared/data/crosstask), `features_dir`
    one feature file per video. A video without a feature file is an error unless
    `skip_missing_features` (then it is skipped, as the peers do silently, with a warning).
    `descriptions` overrides the dataset's descriptors_<name>.json in `root`.
    """
    return load_benchmark_with_report(name, root, features_dir, split, horizon, descriptions,
                                      skip_missing_features)[0]
