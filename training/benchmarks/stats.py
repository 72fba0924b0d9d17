"""Paired bootstrap intervals for "A vs B" claims, over test samples and over seeds.

A difference between two systems is only worth a sentence if it is larger than what another
draw of test samples or another seed would give. Both systems are scored on the same seeds (a
seed fixes the training seed and the data seed, so the same test samples) and the same test
samples within a seed, so the comparison is paired: each bootstrap replicate draws seeds with
replacement and, within every drawn seed, test samples with replacement, and takes the mean of
the per-sample differences A - B (each seed weighted equally). The percentile interval of those
replicates is the interval the verdict prints; an interval that contains 0 is "not
distinguishable", whatever the sign of the mean. See docs/evaluation.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
_CHUNK = 4_000_000  # resampled indices drawn at once (memory bound: 32 MB of int64)


@dataclass(frozen=True)
class Difference:
    """Mean difference A - B and its bootstrap interval, in the unit of the per-sample scores."""

    mean: float
    low: float
    high: float
    confidence: float

    @property
    def spans_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def per_sample_success(pred, gt) -> np.ndarray:
    """100 where the whole predicted plan equals the true one, else 0: per-sample SR in percent."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must both have shape (samples, T); got {pred.shape} and {gt.shape}")
    return 100.0 * (pred == gt).all(axis=1)


def _differences(a: Sequence, b: Sequence) -> list[np.ndarray]:
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"A and B need the same seeds, at least one: got {len(a)} and {len(b)} seeds")
    out = []
    for seed, (x, y) in enumerate(zip(a, b)):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise ValueError(f"seed #{seed}: A and B need one score per test sample, the same samples; "
                             f"got shapes {x.shape} and {y.shape}")
        out.append(x - y)
    return out


def _resampled_means(diff: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` means of `diff` resampled with replacement (drawn in chunks to bound memory)."""
    means = np.empty(count)
    rows = max(1, _CHUNK // diff.size)
    for start in range(0, count, rows):
        stop = min(count, start + rows)
        means[start:stop] = diff[rng.integers(0, diff.size, size=(stop - start, diff.size))].mean(axis=1)
    return means


def paired_bootstrap(a: Sequence, b: Sequence, resamples: int = RESAMPLES, seed: int = 0,
                     confidence: float = 0.95) -> Difference:
    """Mean of A - B over seeds (each the mean over its test samples) and its percentile interval.

    a, b: one array per seed of per-sample scores (e.g. `per_sample_success`), A's and B's for the
    same seeds in the same order and the same test samples in the same order within a seed.
    Deterministic for a given `seed`.
    """
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    diffs = _differences(a, b)
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, len(diffs), size=(resamples, len(diffs)))
    replicate = np.empty(seeds.shape)
    for s, diff in enumerate(diffs):  # every draw of seed s resamples its test samples afresh
        drawn = seeds == s
        replicate[drawn] = _resampled_means(diff, int(drawn.sum()), rng)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicate.mean(axis=1), [tail, 100.0 - tail])
    mean = float(np.mean([d.mean() for d in diffs]))
    return Difference(mean, float(low), float(high), confidence)


def verdict(name_a: str, name_b: str, a: Sequence, b: Sequence, metric: str = "SR", **bootstrap) -> str:
    """The one line an "A vs B" claim may make: who beats whom by how much, with the interval,
    or "not distinguishable" when the interval contains 0."""
    d = paired_bootstrap(a, b, **bootstrap)
    level = f"{100 * d.confidence:g} % CI"
    if d.spans_zero:
        return (f"{name_a} vs {name_b}: not distinguishable ({d.mean:+.2f} {metric}, "
                f"{level} [{d.low:+.2f}, {d.high:+.2f}] spans 0)")
    if d.low > 0:
        return f"{name_a} beats {name_b} by {d.mean:+.2f} {metric} ({level} [{d.low:+.2f}, {d.high:+.2f}])"
    return f"{name_b} beats {name_a} by {-d.mean:+.2f} {metric} ({level} [{-d.high:+.2f}, {-d.low:+.2f}])"
