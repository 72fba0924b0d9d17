"""Bootstrap intervals for "A vs B" claims, resampling seeds and, within a seed, episodes.

A difference between two systems is only worth a sentence if it is larger than what another
draw of test samples or another seed would give. Both systems are scored on the same seeds (a
seed fixes the training seed and the data seed, so the same test samples) and the same test
samples within a seed, so the comparison is paired. Test samples are not independent draws,
though: every window of T steps of an episode (a tabletop episode, a benchmark video) is a
sample, so one episode gives several samples that share a scene and most of a plan, and are
right or wrong together more often than two samples of different episodes. Resampling samples
would count those correlated samples as independent evidence and give too narrow an interval;
the unit that was drawn independently is the episode. So each bootstrap replicate draws seeds
with replacement and, within every drawn seed, that seed's episodes with replacement (each with
all its samples), and takes the mean of the per-sample differences A - B over the drawn samples
(each seed weighted equally). The percentile interval of those replicates is the interval the
verdict prints; an interval that contains 0 is "not distinguishable", whatever the sign of the
mean. See docs/evaluation.md.
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


@dataclass(frozen=True)
class _Episodes:
    """One seed's per-sample scores summed per episode: what a replicate resamples."""

    sums: np.ndarray  # per episode, the sum of its samples' scores
    sizes: np.ndarray  # per episode, its number of samples


def _episodes(scores: np.ndarray, episodes: Sequence | None, where: str) -> _Episodes:
    """`scores` grouped by `episodes` (one id per sample; None: every sample is its own episode)."""
    if episodes is None:
        return _Episodes(scores, np.ones(scores.size))
    ids = np.asarray(episodes)
    if ids.shape != scores.shape:
        raise ValueError(f"{where}: need one episode id per sample, got {ids.shape} ids for {scores.shape} samples")
    _, index = np.unique(ids, return_inverse=True)
    return _Episodes(np.bincount(index, weights=scores), np.bincount(index).astype(np.float64))


def _scores(a: Sequence, b: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"A and B need the same seeds, at least one: got {len(a)} and {len(b)} seeds")
    out = []
    for seed, (x, y) in enumerate(zip(a, b)):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 1 or y.ndim != 1 or x.size == 0 or y.size == 0:
            raise ValueError(f"seed #{seed}: A and B need one score per test sample; got shapes {x.shape} and {y.shape}")
        out.append((x, y))
    return out


def _resampled_means(groups: _Episodes, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` per-sample means over `groups`' episodes resampled with replacement (drawn in
    chunks to bound memory)."""
    n = groups.sums.size
    means = np.empty(count)
    rows = max(1, _CHUNK // n)
    for start in range(0, count, rows):
        stop = min(count, start + rows)
        drawn = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = groups.sums[drawn].sum(axis=1) / groups.sizes[drawn].sum(axis=1)
    return means


def _interval(parts: list[list[_Episodes]], mean: float, resamples: int, seed: int, confidence: float) -> Difference:
    """The percentile interval of the replicates of (mean of part 0) - (mean of part 1, if any),
    averaged over seeds: `parts[s]` holds seed s's one or two groupings, each resampled on its own."""
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, len(parts), size=(resamples, len(parts)))
    replicate = np.zeros(seeds.shape)
    for s, groupings in enumerate(parts):  # every draw of seed s resamples its episodes afresh
        drawn = seeds == s
        for sign, groups in zip((1.0, -1.0), groupings):
            replicate[drawn] += sign * _resampled_means(groups, int(drawn.sum()), rng)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicate.mean(axis=1), [tail, 100.0 - tail])
    return Difference(mean, float(low), float(high), confidence)


def paired_bootstrap(a: Sequence, b: Sequence, resamples: int = RESAMPLES, seed: int = 0,
                     confidence: float = 0.95, episodes: Sequence | None = None) -> Difference:
    """Mean of A - B over seeds (each the mean over its test samples) and its percentile interval.

    a, b: one array per seed of per-sample scores (e.g. `per_sample_success`), A's and B's for the
    same seeds in the same order and the same test samples in the same order within a seed.
    episodes: one array per seed of the episode id of each sample; a replicate resamples a seed's
    episodes, each with all its samples. None treats every sample as its own episode, which is
    right only for samples drawn independently. Deterministic for a given `seed`.
    """
    pairs = _scores(a, b)
    groups = _per_seed(episodes, len(pairs))
    parts = []
    for s, ((x, y), ids) in enumerate(zip(pairs, groups)):
        if x.shape != y.shape:
            raise ValueError(f"seed #{s}: A and B need one score per test sample, the same samples; "
                             f"got shapes {x.shape} and {y.shape}")
        parts.append([_episodes(x - y, ids, f"seed #{s}")])
    mean = float(np.mean([(x - y).mean() for x, y in pairs]))
    return _interval(parts, mean, resamples, seed, confidence)


def unpaired_bootstrap(a: Sequence, b: Sequence, episodes_a: Sequence | None = None,
                       episodes_b: Sequence | None = None, resamples: int = RESAMPLES, seed: int = 0,
                       confidence: float = 0.95) -> Difference:
    """Mean of A - B over seeds and its percentile interval, for A and B scored on different
    samples of each seed (e.g. the novel split against the test split): within a drawn seed, A's
    episodes and B's episodes are resampled independently of each other."""
    pairs = _scores(a, b)
    ids_a, ids_b = _per_seed(episodes_a, len(pairs)), _per_seed(episodes_b, len(pairs))
    parts = [[_episodes(x, ea, f"seed #{s} (A)"), _episodes(y, eb, f"seed #{s} (B)")]
             for s, ((x, y), ea, eb) in enumerate(zip(pairs, ids_a, ids_b))]
    mean = float(np.mean([x.mean() - y.mean() for x, y in pairs]))
    return _interval(parts, mean, resamples, seed, confidence)


def _per_seed(episodes: Sequence | None, seeds: int) -> list:
    if episodes is None:
        return [None] * seeds
    if len(episodes) != seeds:
        raise ValueError(f"need the episode ids of every seed: got {len(episodes)} for {seeds} seeds")
    return list(episodes)


def describe(d: Difference, name_a: str, name_b: str, metric: str = "SR") -> str:
    """The one line an "A vs B" claim may make: who beats whom by how much, with the interval,
    or "not distinguishable" when the interval contains 0."""
    level = f"{100 * d.confidence:g} % CI"
    if d.spans_zero:
        return (f"{name_a} vs {name_b}: not distinguishable ({d.mean:+.2f} {metric}, "
                f"{level} [{d.low:+.2f}, {d.high:+.2f}] spans 0)")
    if d.low > 0:
        return f"{name_a} beats {name_b} by {d.mean:+.2f} {metric} ({level} [{d.low:+.2f}, {d.high:+.2f}])"
    return f"{name_b} beats {name_a} by {-d.mean:+.2f} {metric} ({level} [{-d.high:+.2f}, {-d.low:+.2f}])"


def verdict(name_a: str, name_b: str, a: Sequence, b: Sequence, metric: str = "SR", **bootstrap) -> str:
    """`describe` of the paired bootstrap of A vs B (`bootstrap`: paired_bootstrap's options,
    `episodes` among them)."""
    return describe(paired_bootstrap(a, b, **bootstrap), name_a, name_b, metric)
