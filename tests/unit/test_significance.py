"""Paired significance: a known shift is detected, identical models are not, CIs cover the truth."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.significance import bootstrap_mean_ci, compare_paired, paired_arrays


def noisy_scores(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.9, size=n)


def test_a_known_shift_is_detected_with_a_ci_around_it() -> None:
    a = noisy_scores(200, 1)
    b = a + 0.05 + np.random.default_rng(2).normal(0, 0.05, size=200)  # +0.05 per query, plus noise
    result = compare_paired(a, b, alternative="greater", n_resamples=5000)
    assert result.p_value < 0.001 and result.significant(0.05)
    assert result.ci_low < 0.05 < result.ci_high and result.ci_low > 0
    assert result.mean_difference == pytest.approx(float(np.mean(b - a)))


def test_identical_models_are_not_significant() -> None:
    a = noisy_scores(200, 3)
    result = compare_paired(a, a.copy())
    assert result.p_value == 1.0 and not result.significant(0.05)
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)


def test_pure_noise_is_not_significant() -> None:
    a = noisy_scores(300, 4)
    b = a + np.random.default_rng(5).normal(0, 0.05, size=300)
    b -= np.mean(b - a)  # no mean difference at all
    assert compare_paired(a, b, alternative="two-sided").p_value > 0.5


def test_direction_matters_for_one_sided_tests() -> None:
    a = noisy_scores(100, 6)
    worse = a - 0.03 + np.random.default_rng(7).normal(0, 0.02, size=100)
    assert compare_paired(a, worse, alternative="greater").p_value > 0.99
    assert compare_paired(a, worse, alternative="less").p_value < 0.001
    assert compare_paired(a, worse, alternative="two-sided").p_value < 0.002


def test_a_constant_shift_everywhere_is_certain() -> None:
    a = noisy_scores(50, 8)
    assert compare_paired(a, a + 0.1, alternative="greater").p_value == 0.0
    assert compare_paired(a, a + 0.1, alternative="less").p_value == 1.0


def test_small_exact_example_by_hand() -> None:
    # Differences +1, +1, +1: of the 2^3 sign flips only all-positive reaches a mean of 1, so the
    # exact one-sided p-value is 1/8 (scipy enumerates all flips when they are fewer than n_resamples).
    result = compare_paired([0.0, 0.0, 0.0], [1.0, 1.0, 0.5])
    assert result.p_value == pytest.approx(1 / 8)


def test_paired_arrays_refuse_different_query_sets() -> None:
    a, b = paired_arrays({"q1": 0.1, "q2": 0.2}, {"q2": 0.5, "q1": 0.4})
    assert a.tolist() == [0.1, 0.2] and b.tolist() == [0.4, 0.5]
    with pytest.raises(ValueError, match="different queries"):
        paired_arrays({"q1": 0.1}, {"q2": 0.1})


def test_bootstrap_ci_brackets_the_mean() -> None:
    values = noisy_scores(500, 9)
    low, high = bootstrap_mean_ci(values)
    assert low < values.mean() < high and high - low < 0.06
    assert bootstrap_mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
