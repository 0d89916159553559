"""Latency SLIs of a model: single-text encode percentiles and batch throughput."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from evaluation.evaluator import Encoder


@dataclass(frozen=True)
class LatencyProfile:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    calls: int
    throughput_texts_per_s: float
    batch_size: int

    def metrics(self) -> dict[str, float]:
        """As MLflow metric names (the SLIs a team watches in production)."""
        return {
            "latency_p50_ms": self.p50_ms,
            "latency_p95_ms": self.p95_ms,
            "latency_p99_ms": self.p99_ms,
            "throughput_texts_per_s": self.throughput_texts_per_s,
        }

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def latency_profile(
    model: Encoder,
    texts: Sequence[str],
    *,
    calls: int = 100,
    batch_size: int = 32,
    throughput_texts: int = 256,
    warmup: int = 5,
) -> LatencyProfile:
    """Encode one text at a time ``calls`` times (cycling through ``texts``), then a batch run."""
    if not texts:
        raise ValueError("latency needs at least one text")
    for i in range(warmup):
        model.encode([texts[i % len(texts)]], batch_size=1, show_progress_bar=False, convert_to_numpy=True)
    timings = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        model.encode([texts[i % len(texts)]], batch_size=1, show_progress_bar=False, convert_to_numpy=True)
        timings[i] = time.perf_counter() - start
    batch = [texts[i % len(texts)] for i in range(throughput_texts)]
    start = time.perf_counter()
    model.encode(batch, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    p50, p95, p99 = (float(np.percentile(timings, q) * 1000) for q in (50, 95, 99))
    return LatencyProfile(p50, p95, p99, calls, len(batch) / seconds, batch_size)


def paired_latency(
    model_a: Encoder, model_b: Encoder, texts: Sequence[str], *, calls: int = 200, warmup: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Single-text latencies (ms) of two models, call by call, measured interleaved.

    Calls alternate a, b, b, a, ... on the same texts, so a slow moment of the machine lands on
    both sides instead of deciding the comparison; index i of both arrays is one moment (a pair).
    """
    if not texts:
        raise ValueError("latency needs at least one text")

    def once(model: Encoder, text: str) -> float:
        start = time.perf_counter()
        model.encode([text], batch_size=1, show_progress_bar=False, convert_to_numpy=True)
        return (time.perf_counter() - start) * 1000

    for i in range(warmup):
        once(model_a, texts[i % len(texts)])
        once(model_b, texts[i % len(texts)])
    a, b = np.empty(calls), np.empty(calls)
    for i in range(calls):
        text = texts[i % len(texts)]
        if i % 2:
            b[i], a[i] = once(model_b, text), once(model_a, text)
        else:
            a[i], b[i] = once(model_a, text), once(model_b, text)
    return a, b


def percentiles_ms(samples: np.ndarray) -> dict[str, float]:
    return {f"p{q}": float(np.percentile(samples, q)) for q in (50, 95, 99)}
