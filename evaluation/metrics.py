"""Per-query retrieval metrics over one ranked list, with trec_eval's definitions.

Pure functions over plain values: a ranking is a sequence of document ids, best first; qrels
map a document id to its graded relevance (0 or missing = not relevant). nDCG uses linear gains
(the relevance grade itself) and a log2 discount, as trec_eval and therefore MTEB do; MAP@k
divides by all relevant documents, not only the retrieved ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# The metrics every evaluation reports; names avoid '@', which MLflow rejects.
RECALL_KS = (1, 5, 10, 100)
PRECISION_KS = (1, 5, 10)
METRIC_NAMES = (
    *(f"recall_at_{k}" for k in RECALL_KS),
    *(f"precision_at_{k}" for k in PRECISION_KS),
    "mrr_at_10",
    "ndcg_at_10",
    "map_at_100",
)
DEPTH = 100  # the deepest cut any metric needs


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return sum(1 for d in ranking[:k] if d in relevant) / len(relevant)


def precision_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    return sum(1 for d in ranking[:k] if qrels.get(d, 0) > 0) / k


def mrr_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    for rank, d in enumerate(ranking[:k], start=1):
        if qrels.get(d, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(rank + 1) for rank, d in enumerate(ranking[:k], start=1))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def average_precision_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    n_relevant = sum(1 for g in qrels.values() if g > 0)
    if n_relevant == 0:
        return 0.0
    hits, total = 0, 0.0
    for rank, d in enumerate(ranking[:k], start=1):
        if qrels.get(d, 0) > 0:
            hits += 1
            total += hits / rank
    return total / n_relevant


def query_metrics(ranking: Sequence[str], qrels: Mapping[str, int]) -> dict[str, float]:
    """Every metric in ``METRIC_NAMES`` for one query."""
    out = {f"recall_at_{k}": recall_at_k(ranking, qrels, k) for k in RECALL_KS}
    out |= {f"precision_at_{k}": precision_at_k(ranking, qrels, k) for k in PRECISION_KS}
    out["mrr_at_10"] = mrr_at_k(ranking, qrels, 10)
    out["ndcg_at_10"] = ndcg_at_k(ranking, qrels, 10)
    out["map_at_100"] = average_precision_at_k(ranking, qrels, 100)
    return out


def rank_by_score(scores: Mapping[str, float]) -> list[str]:
    """Order documents as trec_eval does: higher score first, ties broken by document id,
    descending. Deterministic, so equal scores never make a metric flicker between runs."""
    return [d for d, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Macro average over queries (each query weighs the same)."""
    if not per_query:
        return {name: 0.0 for name in METRIC_NAMES}
    n = len(per_query)
    return {name: sum(m[name] for m in per_query.values()) / n for name in METRIC_NAMES}
