"""Score a model on a golden set: encode, retrieve, and compute every metric per query."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from embedops.core.errors import ModelError
from embedops.core.progress import bars
from evaluation.golden import GoldenSet
from evaluation.metrics import DEPTH, mean_metrics, query_metrics, rank_by_score
from evaluation.retrieval import top_k


class Encoder(Protocol):
    """What evaluation needs of a model: sentence-transformers' ``encode`` and similarity name."""

    # Read-only and positional, as evaluation uses them: SentenceTransformer's setter takes only the
    # similarity names it knows, and its first parameter is called ``inputs``.
    @property
    def similarity_fn_name(self) -> str | None: ...

    def encode(
        self,
        sentences: list[str],
        /,
        *,
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        convert_to_numpy: bool = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class EvaluationResult:
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    golden_digest: str
    split: str
    n_queries: int
    n_documents: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    top_hits: dict[str, str] = field(default_factory=dict)  # query id -> the id of its first-ranked document


def encode(model: Encoder, texts: list[str], *, batch_size: int, progress: bool, what: str) -> np.ndarray:
    """Encode and refuse vectors that would make every metric silently wrong."""
    vectors = np.asarray(
        model.encode(texts, batch_size=batch_size, show_progress_bar=progress and bars(), convert_to_numpy=True),
        dtype=np.float32,
    )
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ModelError(f"the model returned shape {vectors.shape} for {len(texts)} {what}")
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise ModelError(
            f"the model produced NaN/Inf vectors for {int(bad.sum())} of {len(texts)} {what} "
            f"(first: #{int(np.argmax(bad))})"
        )
    return vectors


def similarity_of(model: Encoder) -> str:
    name = getattr(model, "similarity_fn_name", None) or "cosine"
    if name in ("cosine", "dot"):
        return name
    raise ModelError(f"similarity '{name}' is not supported for retrieval (use cosine or dot)")


def evaluate(
    model: Encoder,
    golden: GoldenSet,
    *,
    batch_size: int = 32,
    progress: bool = True,
    corpus_embeddings: np.ndarray | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` on ``golden``; pass ``corpus_embeddings`` to reuse an earlier encoding."""
    start = time.perf_counter()
    if corpus_embeddings is None:
        corpus_embeddings = encode(
            model, golden.corpus_texts, batch_size=batch_size, progress=progress, what="documents"
        )
    query_embeddings = encode(model, golden.query_texts, batch_size=batch_size, progress=progress, what="queries")
    # One extra hit per query leaves room to drop the query's own id and still keep DEPTH.
    depth = DEPTH + (1 if golden.drop_self_matches else 0)
    scores, indices = top_k(query_embeddings, corpus_embeddings, depth, similarity=similarity_of(model))
    per_query: dict[str, dict[str, float]] = {}
    top_hits: dict[str, str] = {}
    for row, q_id in enumerate(golden.query_ids):
        hits = {golden.corpus_ids[i]: float(s) for s, i in zip(scores[row], indices[row], strict=True)}
        if golden.drop_self_matches:
            hits.pop(q_id, None)
        ranking = rank_by_score(hits)[:DEPTH]
        per_query[q_id] = query_metrics(ranking, golden.qrels[q_id])
        if ranking:
            top_hits[q_id] = ranking[0]
    return EvaluationResult(
        metrics=mean_metrics(per_query),
        per_query=per_query,
        golden_digest=golden.digest,
        split=golden.split,
        n_queries=golden.n_queries,
        n_documents=len(golden.corpus_ids),
        seconds=time.perf_counter() - start,
        warnings=list(golden.warnings),
        top_hits=top_hits,
    )
