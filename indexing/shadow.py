"""What changes for live queries if the candidate answers instead of production: pure comparisons of
two sets of answers to the same queries (each side its own model and its own index).

Overlap says how different the answers are, not which is better (the golden set decides that):
per query the top-k Jaccard overlap, rank-biased overlap, whether the top result changed, and the
shift of the top score; then means with bootstrap intervals and each side's latency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.overlap import RBO_P, Interval, bootstrap_mean, overlap_at_k, rbo
from indexing.search import Answer


@dataclass(frozen=True)
class QueryComparison:
    query: str
    production: list[str]  # ids, best first
    candidate: list[str]
    overlap: float  # Jaccard of the two top-k sets
    rbo: float
    top1_changed: bool
    score_shift: float  # candidate's top score minus production's (each in its own model's space)
    production_ms: float  # encode + search per query (answered in a batch: the batch's average)
    candidate_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "production": self.production,
            "candidate": self.candidate,
            "overlap": round(self.overlap, 6),
            "rbo": round(self.rbo, 6),
            "top1_changed": self.top1_changed,
            "score_shift": round(self.score_shift, 6),
            "production_ms": round(self.production_ms, 3),
            "candidate_ms": round(self.candidate_ms, 3),
        }


@dataclass(frozen=True)
class ShadowSummary:
    queries: int
    k: int
    overlap: Interval
    rbo: Interval
    top1_changed: Interval  # the share of queries whose top result changed
    score_shift: Interval
    latency_ms: dict[str, dict[str, float]]  # side -> p50, p99 (ms, encode + search) and calls measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "k": self.k,
            "rbo_p": RBO_P,
            "overlap": self.overlap.to_dict(),
            "rbo": self.rbo.to_dict(),
            "top1_changed": self.top1_changed.to_dict(),
            "score_shift": self.score_shift.to_dict(),
            "latency_ms": self.latency_ms,
        }

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow."""
        out = {"shadow_queries": float(self.queries)}
        for name in ("overlap", "rbo", "top1_changed", "score_shift"):
            interval: Interval = getattr(self, name)
            out[f"shadow_{name}"] = interval.mean
            out[f"shadow_{name}_low"] = interval.low
            out[f"shadow_{name}_high"] = interval.high
        for side, stats in self.latency_ms.items():
            out[f"shadow_{side}_p50_ms"] = stats["p50"]
            out[f"shadow_{side}_p99_ms"] = stats["p99"]
        return out


def compare(production: Sequence[Answer], candidate: Sequence[Answer], k: int) -> list[QueryComparison]:
    """One comparison per query; the two answer lists must be for the same queries, in order."""
    rows = []
    for p, c in zip(production, candidate, strict=True):
        if p.query != c.query:
            raise ValueError(f"answers out of step: {p.query!r} against {c.query!r}")
        a, b = [h.id for h in p.hits[:k]], [h.id for h in c.hits[:k]]
        rows.append(
            QueryComparison(
                query=p.query,
                production=a,
                candidate=b,
                overlap=overlap_at_k(a, b, k),
                rbo=rbo(a, b),
                top1_changed=bool(a[:1] != b[:1]),
                score_shift=(c.hits[0].score if c.hits else 0.0) - (p.hits[0].score if p.hits else 0.0),
                production_ms=p.encode_ms + p.search_ms,
                candidate_ms=c.encode_ms + c.search_ms,
            )
        )
    return rows


def summarize(
    rows: Sequence[QueryComparison],
    k: int,
    *,
    seed: int = 0,
    latency_samples: dict[str, list[float]] | None = None,
) -> ShadowSummary:
    """Means with bootstrap intervals; latency from ``latency_samples`` (side -> ms of single-query
    calls) when given, else from the rows (which, answered in batches, carry per-query averages)."""
    if not rows:
        raise ValueError("no queries to summarize")
    samples = latency_samples or {
        "production": [r.production_ms for r in rows],
        "candidate": [r.candidate_ms for r in rows],
    }

    def latency(values: list[float]) -> dict[str, float]:
        return {
            "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "calls": float(len(values)),
        }

    return ShadowSummary(
        queries=len(rows),
        k=k,
        overlap=bootstrap_mean([r.overlap for r in rows], seed=seed),
        rbo=bootstrap_mean([r.rbo for r in rows], seed=seed),
        top1_changed=bootstrap_mean([float(r.top1_changed) for r in rows], seed=seed),
        score_shift=bootstrap_mean([r.score_shift for r in rows], seed=seed),
        latency_ms={side: latency(values) for side, values in samples.items()},
    )


def most_changed(rows: Sequence[QueryComparison], n: int = 10) -> list[QueryComparison]:
    """The queries whose answers changed most: lowest RBO first, then a changed top result; a query
    that differs from one already listed only in case and punctuation is listed once."""
    shown: list[QueryComparison] = []
    seen: set[str] = set()
    for row in sorted(rows, key=lambda r: (r.rbo, not r.top1_changed, r.query)):
        key = " ".join(re.findall(r"\w+", row.query.lower()))
        if key not in seen:
            seen.add(key)
            shown.append(row)
        if len(shown) == n:
            break
    return shown
