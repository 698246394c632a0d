"""Statistics for comparing trained configs: mean and spread over seeds, a paired bootstrap interval for a
difference in accuracy, and McNemar's test. Pure functions of numpy arrays (no I/O, no torch).

Per-video correctness is a 0/1 array of shape (seeds, videos); both configs of a pair are scored on the same
videos, in the same order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1) of the values that are not None; std is None for one value."""
    kept = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if not kept.size:
        return None, None
    return float(kept.mean()), (float(kept.std(ddof=1)) if kept.size > 1 else None)


@dataclass
class Interval:
    """A difference in percentage points with its confidence interval (``low`` to ``high``)."""

    diff: float
    low: float
    high: float
    level: float = 0.95

    @property
    def includes_zero(self) -> bool:
        """True when the interval does not rule out 'no difference'."""
        return self.low <= 0.0 <= self.high


def paired_bootstrap_diff(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 10000,
                          level: float = 0.95, seed: int = 0) -> Interval:
    """Top-1 of A minus top-1 of B (percentage points) with a percentile bootstrap interval.

    Each resample draws the videos with replacement (the same draw for A and B: the pairing) and, independently for
    A and for B, their seeds with replacement; the statistic is the mean correctness over the drawn seeds and videos.
    So the interval covers both the choice of test videos and the seed-to-seed spread of training; with one seed
    per config it is the plain paired bootstrap over videos. ``correct_*``: 0/1 arrays (seeds, videos).
    """
    a, b = _as_runs(correct_a), _as_runs(correct_b)
    if a.shape[1] != b.shape[1] or not a.shape[1]:
        raise ValueError(f"both configs need the same, non-zero number of videos ({a.shape[1]} vs {b.shape[1]})")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError("resamples must be >= 1 and level in (0, 1)")
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    diffs = np.empty(resamples)
    for start in range(0, resamples, 1000):  # chunks bound the (chunk, videos) count matrix
        size = min(1000, resamples - start)
        videos = draw_counts(rng, n, size)
        diffs[start:start + size] = _resampled_mean(a, videos, rng) - _resampled_mean(b, videos, rng)
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    diff = a.mean() - b.mean()
    return Interval(100.0 * float(diff), 100.0 * float(low), 100.0 * float(high), level)


def _as_runs(correct: np.ndarray) -> np.ndarray:
    """(seeds, videos) float array from a 1-D (one run) or 2-D 0/1 array."""
    array = np.asarray(correct, dtype=np.float64)
    return array[None] if array.ndim == 1 else array


def draw_counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` resamples of n items with replacement, as how often each item was drawn: float (size, n)."""
    rows = np.arange(size)[:, None] * n
    drawn = rng.integers(0, n, size=(size, n)) + rows
    return np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def _resampled_mean(runs: np.ndarray, video_counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean correctness for each resample: seeds drawn with replacement, videos weighted by their draw counts."""
    seeds, n = runs.shape
    seed_counts = draw_counts(rng, seeds, len(video_counts))
    per_video = seed_counts @ runs  # (size, n): how often each video was answered correctly over drawn seeds
    return (per_video * video_counts).sum(axis=1) / (seeds * n)


@dataclass
class McNemar:
    """McNemar's test on paired per-video correctness: ``b`` videos only A got right, ``c`` only B."""

    b: int
    c: int
    p_exact: float
    p_chi2: float


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's test of one run of A against one run of B on the same videos (1-D 0/1 arrays).

    Exact: two-sided binomial test of ``b`` successes in ``b + c`` trials with p = 1/2, i.e.
    ``min(1, 2 * P(X <= min(b, c)))``. Chi-squared: Edwards' continuity correction, ``(|b - c| - 1)^2 / (b + c)``
    with one degree of freedom. Both p-values are 1 when ``b + c == 0``.
    """
    a, b_runs = np.asarray(correct_a).astype(bool), np.asarray(correct_b).astype(bool)
    if a.ndim != 1 or a.shape != b_runs.shape:
        raise ValueError(f"McNemar needs one run per config on the same videos, got {a.shape} and {b_runs.shape}")
    b, c = int((a & ~b_runs).sum()), int((~a & b_runs).sum())
    n = b + c
    if not n:
        return McNemar(b, c, 1.0, 1.0)
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))  # exact integers, then one division
    p_exact = min(1.0, float(2 * tail / 2 ** n))  # int / int is a correctly rounded float
    statistic = max(abs(b - c) - 1, 0) ** 2 / n
    p_chi2 = math.erfc(math.sqrt(statistic / 2))  # survival function of chi-squared with 1 degree of freedom
    return McNemar(b, c, p_exact, p_chi2)
