"""Simulated per-video features for CrossTask / COIN / NIV where the real ones are absent (`planllm data simulate`).

SIMULATED FEATURES ARE NOT VIDEO FEATURES. They exist so that the whole real-data path
(loaders, training, evaluation, export) runs on the real annotations without the real S3D
features; any SR / mAcc / mIoU measured on them says nothing about the published numbers and
must never be compared with them or reported as a benchmark result.

How a video is simulated, from its real annotation: each step class has a fixed appearance
vector (its description's text embedding from the frozen TextEncoder, through one fixed random
linear map to --dim), each task a background vector made the same way from the task name. A
video is background everywhere, overwritten by the step's appearance on the seconds its
segments cover; it gets one nuisance offset for the whole video and independent noise every
second. Its length is the last annotated end second plus --margin. Files are written in the
real layout (training.datasets.features), with a `simulated.json` beside them saying so.
"""
from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from planllm_ros.model.descriptions import embed_descriptions
from planllm_ros.model.text_encoder import TextEncoder
from training.datasets.annotations import SPLITS, VideoAnnotation
from training.datasets.base import DatasetError, StepVocabulary
from training.datasets.benchmarks import benchmark_descriptions, reader
from training.datasets.features import SIMULATED_MARKER, write_features

log = logging.getLogger(__name__)

NOT_COMPARABLE = ("Simulated features are not video features: numbers measured on them do not compare "
                  "with published results.")


def annotated_videos(name: str, root: Path) -> tuple[StepVocabulary, list[VideoAnnotation]]:
    """Every video of every split whose list is present (each feature file once)."""
    module = reader(name)
    vocab = module.read_vocabulary(root)
    videos: dict[str, VideoAnnotation] = {}
    for split in SPLITS:
        if not (root / module.SPLIT_FILES[split]).is_file():
            log.info("%s: no %s list (%s), simulating the other splits", name, split, module.SPLIT_FILES[split])
            continue
        for video in module.read_split(root, split, vocab):
            videos.setdefault(video.feature_stem, video)
    if not videos:
        raise DatasetError(f"{root}: no {name} split list found ({', '.join(module.SPLIT_FILES.values())})")
    return vocab, list(videos.values())


def appearance_vectors(texts: list[str], dim: int, seed: int, encoder: TextEncoder | None = None,
                       cache_dir: Path | None = None) -> np.ndarray:
    """(len(texts), dim): unit text embeddings through a fixed Gaussian map, so each entry
    has unit variance and similar texts look alike."""
    embeddings = embed_descriptions(texts, encoder or TextEncoder(), cache_dir).numpy().astype(np.float64)
    projection = np.random.default_rng([seed, 0]).standard_normal((embeddings.shape[1], dim))
    return embeddings @ projection


def simulate_video(video: VideoAnnotation, steps: np.ndarray, background: np.ndarray, seed: int, margin: int,
                   video_noise: float, frame_noise: float) -> np.ndarray:
    """(last end + 1 + margin, dim) features of one video; its own random stream, so a video's
    features do not depend on which other videos are simulated."""
    rng = np.random.default_rng([seed, 1, zlib.crc32(video.feature_stem.encode())])
    length = max((s.end for s in video.segments), default=0) + 1 + margin
    frames = np.repeat(background[None, :], length, axis=0)
    for segment in video.segments:
        frames[max(0, segment.start):segment.end + 1] = steps[segment.step]
    dim = frames.shape[1]
    frames += rng.normal(0.0, video_noise, dim) + rng.normal(0.0, frame_noise, (length, dim))
    return frames.astype(np.float32)


def simulate(name: str, root: str | Path, out: str | Path, dim: int = 512, seed: int = 0, margin: int = 5,
             video_noise: float = 0.5, frame_noise: float = 1.0, descriptions: str | Path | None = None,
             progress: bool = True, encoder: TextEncoder | None = None, cache_dir: str | Path | None = None) -> int:
    """Write one simulated feature file per annotated video of `name`; returns how many.
    `encoder` defaults to a fresh default TextEncoder; `cache_dir` caches the text embeddings."""
    if dim < 1 or margin < 0 or video_noise < 0 or frame_noise < 0:
        raise ValueError(f"need dim >= 1, margin >= 0 and noise >= 0 (got dim={dim}, margin={margin}, "
                         f"video_noise={video_noise}, frame_noise={frame_noise})")
    root, out = Path(root), Path(out)
    vocab, videos = annotated_videos(name, root)
    texts = [d.text() for d in benchmark_descriptions(name, root, vocab, descriptions)]
    vectors = appearance_vectors(texts + list(vocab.tasks), dim, seed, encoder, cache_dir)
    steps, backgrounds = vectors[:vocab.num_steps], vectors[vocab.num_steps:]
    out.mkdir(parents=True, exist_ok=True)
    for video in tqdm(videos, desc=f"simulating {name}", unit="video", disable=not progress):
        frames = simulate_video(video, steps, backgrounds[video.task], seed, margin, video_noise, frame_noise)
        write_features(out / f"{video.feature_stem}.npz", frames)
    marker = {"simulated": True, "dataset": name, "dim": dim, "seed": seed, "margin": margin,
              "video_noise": video_noise, "frame_noise": frame_noise, "videos": len(videos), "note": NOT_COMPARABLE}
    (out / SIMULATED_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return len(videos)
