"""Prometheus text for the search endpoint: a latency histogram, errors, rows and freshness lag.

Plain counters in the worker's memory, written in Prometheus' text format (0.0.4) by hand: a few
dozen lines instead of a dependency. Each worker reports its own requests.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def labels(**values: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    return "{" + inner + "}"


class SearchMetrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS_S) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.errors: dict[str, int] = defaultdict(int)
        self.gauges: dict[str, dict[str, float]] = {}  # label set -> rows, freshness lag

    def observe(self, seconds: float, *, model_version: str, index_id: str) -> None:
        key = labels(model_version=model_version, index_id=index_id)
        with self.lock:
            self.buckets[key][bisect.bisect_left(BUCKETS_S, seconds)] += 1
            self.sums[key] += seconds

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[labels(kind=kind)] += 1

    def index(self, *, model_version: str, index_id: str, rows: int, lag_s: float) -> None:
        with self.lock:
            self.gauges[labels(model_version=model_version, index_id=index_id)] = {"rows": rows, "lag": lag_s}

    def render(self) -> str:
        out = [
            "# HELP embedops_search_seconds Time to answer one /search request (encode and search).",
            "# TYPE embedops_search_seconds histogram",
        ]
        with self.lock:
            for key, counts in sorted(self.buckets.items()):
                running = 0
                for bound, n in zip((*BUCKETS_S, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f'embedops_search_seconds_bucket{key[:-1]},le="{le}"}} {running}')
                out.append(f"embedops_search_seconds_sum{key} {self.sums[key]:.6f}")
                out.append(f"embedops_search_seconds_count{key} {running}")
            out += [
                "# HELP embedops_search_errors_total Failed /search requests.",
                "# TYPE embedops_search_errors_total counter",
            ]
            out += [f"embedops_search_errors_total{key} {n}" for key, n in sorted(self.errors.items())]
            out += ["# HELP embedops_index_rows Rows of each index being served.", "# TYPE embedops_index_rows gauge"]
            out += [f"embedops_index_rows{key} {g['rows']:.0f}" for key, g in sorted(self.gauges.items())]
            out += [
                "# HELP embedops_index_freshness_lag_seconds Age of the oldest corpus change not in the index.",
                "# TYPE embedops_index_freshness_lag_seconds gauge",
            ]
            out += [
                f"embedops_index_freshness_lag_seconds{key} {g['lag']:.1f}" for key, g in sorted(self.gauges.items())
            ]
        return "\n".join(out) + "\n"
