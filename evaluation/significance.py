"""Paired comparison of two models' per-query scores on the same golden set.

Both tests work on per-query differences ``b - a`` (candidate minus baseline), so a query that
is hard for both models does not hide a consistent gain. The permutation test flips the sign of
each difference at random (under the null hypothesis the labels "a" and "b" are exchangeable
within a query); the bootstrap resamples queries for a confidence interval of the mean gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Alternative = Literal["greater", "less", "two-sided"]


@dataclass(frozen=True)
class PairedComparison:
    n: int
    mean_a: float
    mean_b: float
    mean_difference: float  # mean of b - a
    p_value: float
    alternative: Alternative
    ci_low: float
    ci_high: float
    confidence: float
    n_resamples: int

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def paired_arrays(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Align two per-query score maps on their shared query ids (they must be the same set)."""
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise ValueError(f"the two result sets cover different queries ({len(only)} differ, e.g. {only[:3]})")
    keys = sorted(a)
    return np.array([a[k] for k in keys], dtype=float), np.array([b[k] for k in keys], dtype=float)


def compare_paired(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    alternative: Alternative = "greater",
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Paired permutation test of mean(b - a) and a bootstrap CI of that mean.

    ``alternative="greater"`` asks whether b scores higher than a (a candidate beating production).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("need two equal-length 1-D score arrays with at least 2 queries")
    diff = y - x
    mean = float(diff.mean())
    if np.allclose(diff, diff[0]):
        # Every query moved by the same amount (often: not at all). Resampling has nothing to say.
        p = 1.0 if mean == 0 or (alternative == "greater" and mean < 0) or (alternative == "less" and mean > 0) else 0.0
        return PairedComparison(
            len(x), float(x.mean()), float(y.mean()), mean, p, alternative, mean, mean, confidence, 0
        )
    # Imported here: scipy.stats costs ~0.7 s, and every `promote`, `rollback` and `history` imports
    # this module through the gate whether or not a gate runs.
    from scipy import stats

    rng = np.random.default_rng(seed)
    test = stats.permutation_test(
        (diff,),
        np.mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative=alternative,
        random_state=rng,
    )
    boot = stats.bootstrap(
        (diff,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        vectorized=True,
        random_state=rng,
    )
    return PairedComparison(
        n=len(x),
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        mean_difference=mean,
        p_value=float(test.pvalue),
        alternative=alternative,
        ci_low=float(boot.confidence_interval.low),
        ci_high=float(boot.confidence_interval.high),
        confidence=confidence,
        n_resamples=n_resamples,
    )


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of a mean over queries (vectorized; a few ms for thousands of queries)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or np.allclose(v, v[0]):
        m = float(v.mean()) if len(v) else 0.0
        return m, m
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // len(v))  # bound the index matrix to ~16 MB whatever the set's size
    means = np.concatenate(
        [
            v[rng.integers(0, len(v), size=(min(chunk, n_resamples - start), len(v)))].mean(axis=1)
            for start in range(0, n_resamples, chunk)
        ]
    )
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
