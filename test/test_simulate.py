"""The feature simulator on the real NIV annotations: files in the real layout, the structure it
promises (step appearance, background, nuisance, noise), determinism, and a load round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from planllm_ros.cli import main
from planllm_ros.model.text_encoder import TextEncoder
from training.datasets.benchmarks import load_benchmark, read_benchmark
from training.datasets.features import SIMULATED_MARKER, read_features
from training.datasets.simulate import annotated_videos, simulate, simulate_video

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


@pytest.fixture(scope="module")
def embedding_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture
def niv_root(shared_data):
    return shared_data / "niv"


@pytest.fixture
def simulate_niv(niv_root, encoder, embedding_cache):
    """Simulate NIV at 16-d (seed 3, margin 4, no noise unless asked) into `out`; returns `out`."""
    def run(out, seed=3, video_noise=0.0, frame_noise=0.0):
        simulate("niv", niv_root, out, dim=16, seed=seed, margin=4, video_noise=video_noise,
                 frame_noise=frame_noise, progress=False, encoder=encoder, cache_dir=embedding_cache)
        return out
    return run


@pytest.fixture
def noiseless(simulate_niv, tmp_path):
    return simulate_niv(tmp_path / "noiseless")


def test_noiseless_videos_show_step_appearance_and_task_background(niv_root, noiseless):
    _, videos = annotated_videos("niv", niv_root)
    assert len(videos) == 103 + 45
    marker = json.loads((noiseless / SIMULATED_MARKER).read_text())
    assert marker["simulated"] is True and "do not compare with published" in marker["note"]
    appearance: dict[int, np.ndarray] = {}
    background: dict[int, np.ndarray] = {}
    for video in videos:
        frames = read_features(noiseless / f"{video.feature_stem}.npz")
        assert frames.shape == (max(s.end for s in video.segments) + 1 + 4, 16)
        covered = np.zeros(len(frames), bool)
        for segment in video.segments:
            covered[segment.start:segment.end + 1] = True
        for second in range(len(frames)):
            if not covered[second]:  # background: one vector per task
                np.testing.assert_array_equal(frames[second], background.setdefault(video.task, frames[second]))
        last = {}
        for segment in video.segments:  # later segments overwrite overlapping earlier ones
            last.update({t: segment.step for t in range(segment.start, segment.end + 1)})
        for second, step in last.items():
            np.testing.assert_array_equal(frames[second], appearance.setdefault(step, frames[second]))
    assert len(appearance) == 48 and len(background) == 5
    vectors = np.stack([appearance[i] for i in range(48)] + list(background.values()))
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
    assert distances[~np.eye(len(vectors), dtype=bool)].min() > 0.1  # every class looks different


def test_nuisance_offset_and_noise_levels(simulate_niv, noiseless, tmp_path):
    noisy = simulate_niv(tmp_path / "noisy", video_noise=2.0, frame_noise=0.5)
    offsets, noise = [], []
    for path in sorted(noiseless.glob("*.npz")):
        residual = read_features(noisy / path.name) - read_features(path)
        offsets.append(residual.mean(axis=0))  # one offset per video ...
        noise.append(residual - offsets[-1])  # ... plus fresh noise every second
    assert np.std(offsets) == pytest.approx(2.0, rel=0.1)
    assert np.std(np.concatenate(noise)) == pytest.approx(0.5, rel=0.1)


def test_videos_are_deterministic_per_seed(niv_root):
    _, videos = annotated_videos("niv", niv_root)
    steps, background = np.eye(48, 8), np.ones(8)

    def frames(video, seed):
        return simulate_video(video, steps, background, seed, margin=2, video_noise=1.0, frame_noise=1.0)

    np.testing.assert_array_equal(frames(videos[5], 7), frames(videos[5], 7))
    assert not np.allclose(frames(videos[5], 7), frames(videos[5], 8))
    assert not np.allclose(frames(videos[5], 7)[:5], frames(videos[6], 7)[:5])


def test_round_trip_gives_every_window(niv_root, tmp_path):
    assert main(["data", "simulate", "--dataset", "niv", "--root", str(niv_root), "--out", str(tmp_path),
                 "--dim", "8", "--seed", "1"]) == 0
    for split in ("train", "test"):
        _, videos = read_benchmark("niv", niv_root, split)
        dataset = load_benchmark("niv", niv_root, tmp_path, split, 3)
        assert len(dataset) == sum(max(0, len(v.segments) - 2) for v in videos)
        assert dataset[0].start.shape == (8,) and np.isfinite(dataset[0].start).all()


def test_help_says_numbers_are_not_comparable(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "simulate", "--help"])
    assert exit_info.value.code == 0
    assert "do not compare with published results" in " ".join(capsys.readouterr().out.split())


def test_bad_options_are_reported(niv_root, tmp_path, capsys):
    assert main(["data", "simulate", "--dataset", "niv", "--root", str(niv_root), "--out", str(tmp_path),
                 "--dim", "0"]) == 2
    assert "need dim >= 1" in capsys.readouterr().err
    assert main(["data", "simulate", "--dataset", "niv", "--root", str(tmp_path / "absent"), "--out",
                 str(tmp_path)]) == 2
    assert "niv_action_idx.json: file not found" in capsys.readouterr().err
