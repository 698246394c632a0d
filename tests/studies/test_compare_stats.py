"""rs3d.studies.statistics against hand-worked cases: McNemar's p-values, exact bootstrap distributions of small
samples, the normal limit of a large one, and the mean and sample standard deviation over seeds."""
import math

import numpy as np
import pytest

from rs3d.studies.statistics import mcnemar, mean_std, paired_bootstrap_diff


def pair_with(b: int, c: int, both: int = 3, neither: int = 2):
    """Per-video correctness of two runs with b videos only A got right and c only B got right."""
    a = [1] * b + [0] * c + [1] * both + [0] * neither
    other = [0] * b + [1] * c + [1] * both + [0] * neither
    return np.array(a), np.array(other)


def test_mcnemar_hand_worked():
    # b=1, c=5: exact two-sided binomial p with min(b, c) = 1 of n = 6:
    # P(X <= 1) = (1 + 6) / 64, doubled = 14 / 64 = 0.21875. Chi-squared with continuity correction:
    # (|1 - 5| - 1)^2 / 6 = 1.5; P(chi2_1 > 1.5) = 0.2206713619 (tables: 2 * (1 - Phi(sqrt(1.5)))).
    result = mcnemar(*pair_with(1, 5))
    assert (result.b, result.c) == (1, 5)
    assert result.p_exact == pytest.approx(14 / 64, abs=1e-12)
    assert result.p_chi2 == pytest.approx(0.2206713619, abs=1e-8)
    # b=10, c=2: P(X <= 2) = (1 + 12 + 66) / 4096, doubled = 158 / 4096; (8 - 1)^2 / 12 = 49/12 -> p = 0.0433081.
    result = mcnemar(*pair_with(10, 2))
    assert result.p_exact == pytest.approx(158 / 4096, abs=1e-12)
    assert result.p_chi2 == pytest.approx(0.0433081, abs=1e-6)
    # symmetric in A and B, and no discordant video means no evidence at all
    assert mcnemar(*reversed(pair_with(10, 2))).p_exact == pytest.approx(158 / 4096, abs=1e-12)
    assert mcnemar(*pair_with(0, 0)).p_exact == 1.0 and mcnemar(*pair_with(0, 0)).p_chi2 == 1.0
    assert mcnemar(*pair_with(4, 4)).p_exact == 1.0  # 2 * P(X <= 4 | n=8) > 1, clipped


def test_mcnemar_large_counts_stay_exact():
    # b=0, c=60: p = 2 / 2^60 exactly; the chi2 approximation (59^2/60 = 58.0167) gives about 2.6e-14.
    result = mcnemar(*pair_with(0, 60))
    assert result.p_exact == pytest.approx(2.0 ** -59, rel=1e-12)
    assert result.p_chi2 == pytest.approx(math.erfc(math.sqrt(59 ** 2 / 60 / 2)), rel=1e-9)
    with pytest.raises(ValueError):
        mcnemar(np.ones((2, 3)), np.ones((2, 3)))


def test_bootstrap_small_case_matches_its_exact_distribution():
    # A right on 1 of 4 videos, B on none: the resampled difference is 100 * K / 4 with K ~ Binomial(4, 1/4):
    # P(K = 0) = 0.316 > 2.5%, P(K <= 2) = 0.949 < 97.5% < P(K <= 3) = 0.996, so the 95% interval is [0, 75].
    interval = paired_bootstrap_diff(np.array([1, 0, 0, 0]), np.array([0, 0, 0, 0]), resamples=20000)
    assert interval.diff == 25.0
    assert (interval.low, interval.high) == (0.0, 75.0)
    assert interval.includes_zero


def test_bootstrap_resamples_seeds_not_only_videos():
    # A's two seeds: one right on every video, one wrong on every video; B always wrong. Averaging the seeds would
    # give a certain +50; resampling them gives A's mean 0, 50 or 100 with probability 1/4, 1/2, 1/4: [0, 100].
    a = np.array([[1, 1, 1], [0, 0, 0]])
    interval = paired_bootstrap_diff(a, np.zeros((2, 3)), resamples=20000)
    assert interval.diff == 50.0
    assert (interval.low, interval.high) == (0.0, 100.0)


def test_bootstrap_is_paired_over_videos():
    # Identical predictions: every resample draws the same videos for both, so the difference is always 0 (an
    # unpaired bootstrap of two 50% accuracies over 50 videos would span about +-20 points).
    correct = np.random.default_rng(1).integers(0, 2, 50)
    interval = paired_bootstrap_diff(correct, correct.copy(), resamples=2000)
    assert (interval.diff, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_bootstrap_large_sample_matches_normal_limit():
    # 2000 videos, one seed each: the interval approaches mean(d) +- 1.96 * sd(d) / sqrt(n) of the per-video
    # differences d (central limit theorem), computed here without the code under test.
    rng = np.random.default_rng(7)
    a = (rng.random(2000) < 0.70).astype(int)
    b = np.where(rng.random(2000) < 0.8, a, 1 - a)  # correlated, as two models on the same videos are
    d = 100.0 * (a - b)
    half = 1.959964 * d.std(ddof=1) / math.sqrt(len(d))
    interval = paired_bootstrap_diff(a, b, resamples=10000, seed=3)
    assert interval.diff == pytest.approx(d.mean())
    assert interval.low == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert interval.high == pytest.approx(d.mean() + half, abs=0.1 * half)
    assert not interval.includes_zero or abs(d.mean()) < half
    # the same bootstrap seed gives the same interval
    assert paired_bootstrap_diff(a, b, resamples=10000, seed=3) == interval


def test_bootstrap_rejects_mismatched_videos():
    with pytest.raises(ValueError, match="same"):
        paired_bootstrap_diff(np.ones(4), np.ones(5))


def test_mean_std_over_seeds():
    # sample std of 1, 2, 3, 4: squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, / (4 - 1), sqrt -> 1.2909944
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(1.2909944487, abs=1e-9)
    assert mean_std([80.0]) == (80.0, None)
    assert mean_std([None, 50.0, None]) == (50.0, None)
    assert mean_std([]) == (None, None)
