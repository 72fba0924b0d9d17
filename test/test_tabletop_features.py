"""The tabletop feature cache (keyed by backbone, weights, generator source and dataset identity)
and the baseline planners that read it, on tiny real datasets."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.evaluation.metrics import procedure_metrics
from training.tabletop import load_tabletop
from training.tabletop.baselines import first_last_frequent, nearest_neighbour, oracle_task_random
from training.tabletop.dataset import windows
from training.tabletop.features import cache_identity, cache_path, generator_hash
from training.tabletop.tasks import TASKS
from training.tabletop.world import STEP_INDEX


def _files(folder):
    return sorted(p.name for p in folder.glob("*.npz"))


def test_features_are_cached_and_rebuilt_when_the_key_changes(tmp_path):
    ds = load_tabletop("train", 3, seed=0, num_samples=4, cache_dir=tmp_path, progress=False)
    # the default backbone block is the last one: its 7x7 map of 1280 channels, float16
    assert ds.observation == "features" and ds[0].start.shape == (49, 1280) and ds[0].start.dtype == np.float16
    (first,) = _files(tmp_path)
    stamp = (tmp_path / first).stat().st_mtime_ns
    again = load_tabletop("train", 3, seed=0, num_samples=4, cache_dir=tmp_path, progress=False)
    assert (tmp_path / first).stat().st_mtime_ns == stamp, "a valid cache must be read, not rebuilt"
    assert np.array_equal(again[3].goal, ds[3].goal)
    images = load_tabletop("train", 3, seed=0, num_samples=4, observation="images", progress=False)
    assert len(images) == len(ds) and [s.steps.tolist() for s in images] == [s.steps.tolist() for s in ds]
    # each window with the episode's steps before and after it: together, the episode's plan
    episodes, picked = windows("train", 3, 0, 4)
    assert [[*s.before, *s.steps, *s.after] for s in ds] == [list(episodes[e].plan) for e, _ in picked]
    assert [len(s.before) for s in ds] == [k for _, k in picked]

    load_tabletop("train", 3, seed=1, num_samples=4, cache_dir=tmp_path, progress=False)
    load_tabletop("train", 4, seed=0, num_samples=4, cache_dir=tmp_path, progress=False)
    load_tabletop("train", 3, seed=0, num_samples=5, cache_dir=tmp_path, progress=False)
    block13 = load_tabletop("train", 3, seed=0, num_samples=4, cache_dir=tmp_path, layer=13, progress=False)
    assert block13[0].start.shape == (196, 96)  # the tabletop preset's 14x14 map
    assert len(_files(tmp_path)) == 5, "seed, horizon, size and backbone block each key their own cache file"

    # paraphrase serves test's samples, so it shares test's cache
    load_tabletop("test", 3, seed=0, num_samples=3, cache_dir=tmp_path, progress=False)
    load_tabletop("paraphrase", 3, seed=0, num_samples=3, cache_dir=tmp_path, progress=False)
    assert len(_files(tmp_path)) == 6

    # a file whose stored identity does not match its key (stale or foreign) is rebuilt
    with np.load(tmp_path / first) as data:
        np.savez(tmp_path / first, features=np.zeros_like(data["features"]),
                 identity=np.array(json.dumps({"backbone": "something else"})))
    rebuilt = load_tabletop("train", 3, seed=0, num_samples=4, cache_dir=tmp_path, progress=False)
    assert np.array_equal(rebuilt[3].goal, ds[3].goal)


def test_cache_key_covers_backbone_weights_and_generator(tmp_path):
    ident = {"split": "train", "seed": 0, "num_samples": 4, "horizon": 3}
    backbone = {"backbone": "mobilenet_v2", "weights_hash": "aaaa", "layer": 13}
    base = cache_identity(backbone, ident)
    assert base["generator"] == generator_hash() and len(base["generator"]) == 16
    paths = {cache_path(tmp_path, base),
             cache_path(tmp_path, cache_identity({**backbone, "weights_hash": "bbbb"}, ident)),
             cache_path(tmp_path, cache_identity({**backbone, "backbone": "open_clip"}, ident)),
             cache_path(tmp_path, cache_identity({**backbone, "layer": 18}, ident)),
             cache_path(tmp_path, {**base, "generator": "0" * 16})}
    assert len(paths) == 5


@pytest.fixture
def one_torch_thread():
    """L-BFGS makes thousands of tiny calls: with threads on a shared 2-core box they spin-wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_baselines_run_on_a_tiny_dataset(tmp_path, one_torch_thread):
    """Each planner does what its definition says, on real features: nearest neighbour finds a
    training sample itself; first/last fits the training samples' first and last steps and
    answers the most frequent training sequence with them; oracle-task random draws a window of
    a valid plan of the true task. Scored by the metrics as whole-plan matches."""
    train = load_tabletop("train", 3, seed=0, num_samples=24, cache_dir=tmp_path, progress=False)
    test = load_tabletop("test", 3, seed=0, num_samples=8, cache_dir=tmp_path, progress=False)
    train_gt, gt = np.stack([s.steps for s in train]), np.stack([s.steps for s in test])
    train_seqs = [tuple(s) for s in train_gt.tolist()]
    for pred in (nearest_neighbour(train, test), nearest_neighbour(train, test, with_difference=False),
                 first_last_frequent(train, test)):
        assert pred.shape == gt.shape and {tuple(p) for p in pred.tolist()} <= set(train_seqs)
        assert procedure_metrics(pred, gt)["sr"] == pytest.approx(100 * float((pred == gt).all(axis=1).mean()))
    # each training sample is its own nearest neighbour (a planner ignoring its inputs is not)
    assert np.array_equal(nearest_neighbour(train, train), train_gt)
    # first/last: the fitted classifiers get the training samples' end steps, and the plan is the
    # most frequent training sequence with the predicted first and last step
    fitted = first_last_frequent(train, train)
    assert (fitted[:, 0] == train_gt[:, 0]).mean() >= 0.9 and (fitted[:, -1] == train_gt[:, -1]).mean() >= 0.9
    for plan in fitted.tolist():
        same_ends = [q for q in train_seqs if (q[0], q[-1]) == (plan[0], plan[-1])]
        assert same_ends and same_ends.count(tuple(plan)) == max(same_ends.count(q) for q in same_ends)
    random_plans = oracle_task_random(test)
    for plan, sample in zip(random_plans.tolist(), test):
        windows_of_task = {tuple(STEP_INDEX[k] for k in p[i:i + 3])
                           for p in TASKS[sample.task].plan_distribution() for i in range(len(p) - 2)}
        assert tuple(plan) in windows_of_task


def test_bad_observation_is_rejected():
    with pytest.raises(ValueError, match="observation"):
        load_tabletop("train", 3, observation="video")
