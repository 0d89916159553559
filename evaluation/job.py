"""An evaluation job: resolve the model, reuse cached corpus vectors, score, add CIs and latency."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from embedops.core.progress import phase, say
from evaluation.cache import CacheKey, EmbeddingCache, weights_digest
from evaluation.evaluator import EvaluationResult, encode, evaluate
from evaluation.golden import DEFAULT_SPLIT, GoldenSet, load_golden_set
from evaluation.latency import latency_profile
from evaluation.models import load_sentence_transformer, resolve_model_folder
from evaluation.precision import autocast, effective_precision
from evaluation.significance import bootstrap_mean_ci


@dataclass(frozen=True)
class EvaluationReport:
    model: str
    model_digest: str
    golden_path: str
    split: str
    golden_digest: str
    precision: str
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    n_queries: int
    n_documents: int
    cache_hit: bool
    seconds: float
    latency: dict[str, float] | None = None
    warnings: list[str] = field(default_factory=list)
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    """A model ready to evaluate, with the digest of the weights it was loaded from (its identity)."""

    ref: str
    model: Any
    digest: str


def load_for_evaluation(model_ref: str | Path) -> LoadedModel:
    """Resolve (downloading an MLflow URI to a temporary folder), fingerprint and load a model."""
    with tempfile.TemporaryDirectory() as download:
        folder = resolve_model_folder(model_ref, download_dir=Path(download))
        return LoadedModel(str(model_ref), load_sentence_transformer(folder), weights_digest(folder))


def evaluate_loaded(
    loaded: LoadedModel,
    golden: GoldenSet,
    *,
    cache_dir: Path | None = None,
    precision: str = "fp32",
    batch_size: int = 32,
    latency_calls: int = 0,
    progress: bool = True,
) -> tuple[EvaluationReport, EvaluationResult]:
    """Score an already loaded model; corpus vectors come from the cache when the key matches."""
    start = time.perf_counter()
    model = loaded.model
    mode = effective_precision(precision)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    key = CacheKey(loaded.digest, golden.digest, int(model.max_seq_length), mode)
    corpus = cache.load(key, len(golden.corpus_ids)) if cache else None
    cache_hit = corpus is not None
    n_docs, n_queries = len(golden.corpus_ids), len(golden.query_ids)
    with autocast(mode):
        if corpus is None:
            with phase(f"embedding {n_docs} documents with {loaded.ref}", count=n_docs):
                corpus = encode(model, golden.corpus_texts, batch_size=batch_size, progress=progress, what="documents")
            if cache:
                cache.save(key, corpus)
        else:
            say(f"{n_docs} document vectors of {loaded.ref} from the cache")
        with phase(f"embedding and scoring {n_queries} queries with {loaded.ref}", count=n_queries, unit="queries"):
            result = evaluate(model, golden, batch_size=batch_size, progress=progress, corpus_embeddings=corpus)
        latency = None
        if latency_calls:
            with phase(f"latency: {latency_calls} single-text calls", count=latency_calls, unit="calls"):
                latency = latency_profile(
                    model, golden.query_texts, calls=latency_calls, batch_size=batch_size
                ).metrics()
    ci = {name: bootstrap_mean_ci([q[name] for q in result.per_query.values()]) for name in result.metrics}
    report = EvaluationReport(
        model=loaded.ref,
        model_digest=loaded.digest,
        golden_path=str(golden.path),
        split=golden.split,
        golden_digest=golden.digest,
        precision=mode,
        metrics=result.metrics,
        ci=ci,
        n_queries=result.n_queries,
        n_documents=result.n_documents,
        cache_hit=cache_hit,
        seconds=time.perf_counter() - start,
        latency=latency,
        warnings=list(golden.warnings),
    )
    return report, result


def run_evaluation(
    model_ref: str | Path,
    golden_dir: str | Path,
    split: str = DEFAULT_SPLIT,
    *,
    cache_dir: Path | None = None,
    precision: str = "fp32",
    strict: bool = False,
    drop_self_matches: bool = False,
    batch_size: int = 32,
    latency_calls: int = 0,
    progress: bool = True,
    loader: Callable[[str | Path], LoadedModel] | None = None,
) -> tuple[EvaluationReport, EvaluationResult]:
    """Evaluate ``model_ref`` (a folder or an MLflow model URI) on one split of a golden set.

    ``loader`` turns the reference into a model; the CLI passes the registry's, which verifies a
    registered version against its manifest first (evaluation cannot import the registry)."""
    start = time.perf_counter()
    with phase(f"reading the golden set {golden_dir} [{split}]"):
        golden = load_golden_set(golden_dir, split, strict=strict, drop_self_matches=drop_self_matches)
    with phase(f"loading {model_ref}"):
        loaded = (loader or load_for_evaluation)(model_ref)
    report, result = evaluate_loaded(
        loaded,
        golden,
        cache_dir=cache_dir,
        precision=precision,
        batch_size=batch_size,
        latency_calls=latency_calls,
        progress=progress,
    )
    return replace(report, seconds=time.perf_counter() - start), result
