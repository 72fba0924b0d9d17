"""Paired bootstrap intervals and the verdict line: exact cases, shrinking intervals, pairing,
determinism and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from training.benchmarks.stats import paired_bootstrap, per_sample_success, verdict


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
