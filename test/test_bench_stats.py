"""Bootstrap intervals and the verdict line: exact cases, shrinking intervals, pairing,
resampling by episode, unpaired splits, determinism and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from training.benchmarks.stats import paired_bootstrap, per_sample_success, unpaired_bootstrap, verdict


def test_constant_difference_gives_a_degenerate_interval():
    a = [np.full(50, 30.0), np.full(40, 10.0)]
    b = [x - 2.0 for x in a]
    d = paired_bootstrap(a, b, resamples=500)
    assert (d.mean, d.low, d.high) == (2.0, 2.0, 2.0) and not d.spans_zero
    assert verdict("full", "baseline", a, b, resamples=500) == "full beats baseline by +2.00 SR (95 % CI [+2.00, +2.00])"
    assert verdict("baseline", "full", b, a, resamples=500) == "full beats baseline by +2.00 SR (95 % CI [+2.00, +2.00])"
    same = verdict("x", "y", a, a, resamples=500)
    assert same == "x vs y: not distinguishable (+0.00 SR, 95 % CI [+0.00, +0.00] spans 0)"


def test_exact_two_sample_case():
    """One seed, differences (0, 1): a resampled mean is 0, 1/2 or 1 with p 1/4, 1/2, 1/4, so the
    95 % interval is [0, 1], which touches 0: not distinguishable."""
    d = paired_bootstrap([np.array([1.0, 1.0])], [np.array([1.0, 0.0])])
    assert (d.mean, d.low, d.high) == (0.5, 0.0, 1.0) and d.spans_zero


def test_seeds_weigh_equally_and_are_resampled():
    """Seed 1 differs by 1 on 10 samples, seed 2 by 3 on 2 samples: the mean is over seeds (2, not
    1.33), and resampling seeds gives 1, 2 or 3 with p 1/4, 1/2, 1/4: the interval is [1, 3]."""
    a = [np.ones(10), np.full(2, 3.0)]
    b = [np.zeros(10), np.zeros(2)]
    d = paired_bootstrap(a, b)
    assert (d.mean, d.low, d.high) == (2.0, 1.0, 3.0)


def test_interval_shrinks_with_more_samples():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 10_000):
        a = [100.0 * (rng.random(n) < 0.3) for _ in range(3)]
        b = [100.0 * (rng.random(n) < 0.3) for _ in range(3)]
        d = paired_bootstrap(a, b, resamples=2000)
        widths.append(d.high - d.low)
    assert widths[1] < widths[0] / 4  # sqrt(100) = 10 times narrower in theory


def test_pairing_is_kept_sample_by_sample():
    """B is A with 5 % of its successes lost: paired, that is a clear win for A although each
    system's own sample noise (30 % success rate on 1000 samples) is larger than the gap."""
    rng = np.random.default_rng(1)
    a = [100.0 * (rng.random(1000) < 0.3) for _ in range(3)]
    b = [np.where(rng.random(x.size) < 0.05, 0.0, x) for x in a]
    d = paired_bootstrap(a, b)
    assert d.low > 0 and d.high < 3.0
    unpaired = paired_bootstrap(a, [rng.permutation(x) for x in b])
    assert unpaired.high - unpaired.low > 2 * (d.high - d.low)
    assert verdict("A", "B", a, b).startswith(f"A beats B by +{d.mean:.2f} SR (95 % CI [+")


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    a = [100.0 * (rng.random(200) < 0.4) for _ in range(3)]
    b = [100.0 * (rng.random(200) < 0.35) for _ in range(3)]
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7) != paired_bootstrap(a, b, seed=8)


def test_per_sample_success_and_bad_input():
    pred = np.array([[1, 2, 3], [1, 2, 4]])
    assert per_sample_success(pred, np.array([[1, 2, 3], [1, 2, 3]])).tolist() == [100.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        per_sample_success(pred, pred[:1])
    with pytest.raises(ValueError, match="same seeds"):
        paired_bootstrap([np.ones(3)], [np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match="seed #1: .* same samples"):
        paired_bootstrap([np.ones(3), np.ones(4)], [np.ones(3), np.ones(5)])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([np.ones(3)], [np.ones(3)], confidence=95)


def test_episodes_are_resampled_whole():
    """One seed, two episodes: three windows all right, one window wrong. By episode a replicate
    holds episode A twice (mean 1), B twice (0) or both (3/4), so the interval is [0, 1]; by
    window it could never reach 0 as often, and its 2.5 % percentile is above 0."""
    a, b = [np.array([1.0, 1.0, 1.0, 0.0])], [np.zeros(4)]
    grouped = paired_bootstrap(a, b, episodes=[["A", "A", "A", "B"]])
    assert (grouped.mean, grouped.low, grouped.high) == (0.75, 0.0, 1.0)
    windows = paired_bootstrap(a, b)
    assert windows.low > 0.0 and windows.high == 1.0


def test_correlated_windows_widen_the_interval_and_independent_ones_do_not():
    """Negative control for the grouping: windows that share their episode's outcome give a much
    wider interval by episode than by window; windows drawn independently give about the same."""
    rng = np.random.default_rng(3)
    episodes = [np.repeat(np.arange(200), 5)]  # one seed: the seeds' own spread would dilute the ratio
    shared = [np.repeat(100.0 * (rng.random(200) < 0.5), 5)]
    independent = [100.0 * (rng.random(1000) < 0.5)]
    zeros = [np.zeros(1000)]

    def width(scores, ids=None) -> float:
        d = paired_bootstrap(scores, zeros, resamples=4000, episodes=ids)
        return d.high - d.low

    assert width(shared, episodes) > 1.8 * width(shared)  # sqrt(5) = 2.24 in theory
    assert width(independent, episodes) == pytest.approx(width(independent), rel=0.15)


def test_unpaired_splits_resample_each_side_on_its_own():
    """A on one split, B on another with other samples and sizes: the mean is per seed, and a
    constant difference still gives a degenerate interval."""
    a = [np.full(30, 40.0), np.full(20, 50.0)]
    b = [np.full(10, 10.0), np.full(40, 20.0)]
    d = unpaired_bootstrap(a, b, [np.arange(30) // 3, np.arange(20) // 4], [np.arange(10), np.arange(40) // 2],
                           resamples=500)
    assert (d.mean, d.low, d.high) == (30.0, 30.0, 30.0)
    with pytest.raises(ValueError, match="one episode id per sample"):
        unpaired_bootstrap(a, b, [np.arange(29), np.arange(20)], None)
    with pytest.raises(ValueError, match="episode ids of every seed"):
        paired_bootstrap(a, a, episodes=[np.arange(30)])
