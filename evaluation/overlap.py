"""How much two rankings of the same query agree: label-free measures for comparing two models'
answers on live queries (``embedops shadow``). Pure functions over id lists and numbers.

- ``overlap_at_k``: Jaccard of the two top-k sets (order ignored).
- ``rbo``: rank-biased overlap (Webber, Moffat and Zobel 2010, eq. 32, the extrapolated form for
  two lists seen to the same depth k): agreement at every depth d, weighted by p^(d-1), so the top
  counts most; p = 0.9 puts about 86% of the weight on the first 10 ranks. 1.0 for identical lists,
  0.0 for disjoint ones.
- ``bootstrap_mean``: a mean and its percentile bootstrap interval, seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RBO_P = 0.9


def overlap_at_k(a: Sequence[str], b: Sequence[str], k: int = 10) -> float:
    """|A ∩ B| / |A ∪ B| over the first ``k`` ids of each; two empty lists agree fully."""
    left, right = set(a[:k]), set(b[:k])
    union = left | right
    return len(left & right) / len(union) if union else 1.0


def rbo(a: Sequence[str], b: Sequence[str], p: float = RBO_P) -> float:
    """Extrapolated rank-biased overlap of two rankings, both cut to the shorter one's depth k:
    (X_k / k) p^k + ((1 - p) / p) sum_{d=1..k} (X_d / d) p^d, with X_d the ids shared by the two
    top-d prefixes."""
    if not 0 < p < 1:
        raise ValueError(f"p must be within (0, 1), got {p}")
    k = min(len(a), len(b))
    if k == 0:
        return 1.0 if len(a) == len(b) else 0.0
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    shared = 0
    total = 0.0
    for d in range(1, k + 1):
        x, y = a[d - 1], b[d - 1]
        if x == y:
            shared += 1
        else:
            shared += (x in seen_b) + (y in seen_a)
        seen_a.add(x)
        seen_b.add(y)
        total += shared / d * p**d
    return float(shared / k * p**k + (1 - p) / p * total)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def bootstrap_mean(values: Sequence[float], *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """The mean of ``values`` with a percentile bootstrap interval (``resamples`` draws with
    replacement, fixed seed, so a rerun gives the same interval)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to summarize")
    mean = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return Interval(mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high))
