"""Gathering the gate's evidence: both versions re-evaluated on the same golden set, latency measured
side by side, contract facts read from the versions' tags. The decision itself is ``registry.gate.decide``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedops.core.errors import ModelError
from embedops.core.progress import phase
from evaluation.evaluator import EvaluationResult
from evaluation.golden import GoldenSet
from evaluation.job import EvaluationReport, LoadedModel, evaluate_loaded
from evaluation.latency import paired_latency, percentiles_ms
from evaluation.precision import autocast, effective_precision
from registry.contract import save_tokenizer, tokenizer_sha256
from registry.gate.decision import Evidence, GateDecision, decide
from registry.gate.policy import GatePolicy
from registry.store import VersionInfo
from registry.verified import load_version


@dataclass(frozen=True)
class QueryChange:
    """One golden query whose primary metric moved most, with what each version ranked first."""

    query_id: str
    query: str
    production_score: float
    candidate_score: float
    production_top: str  # the first-ranked document's text (truncated), and whether it is relevant
    production_top_relevant: bool
    candidate_top: str
    candidate_top_relevant: bool

    @property
    def difference(self) -> float:
        return self.candidate_score - self.production_score


@dataclass(frozen=True)
class GateRun:
    decision: GateDecision
    candidate_report: EvaluationReport | None
    production_report: EvaluationReport
    changes: list[QueryChange] = field(default_factory=list)  # the most-changed queries, largest first


def most_changed(
    golden: GoldenSet,
    production: EvaluationResult,
    candidate: EvaluationResult,
    metric: str,
    *,
    limit: int = 10,
    snippet: int = 160,
) -> list[QueryChange]:
    """The ``limit`` queries whose ``metric`` changed most (either way), for the report's table."""
    texts = dict(zip(golden.query_ids, golden.query_texts, strict=True))
    docs = dict(zip(golden.corpus_ids, golden.corpus_texts, strict=True))

    def top(result: EvaluationResult, query_id: str) -> tuple[str, bool]:
        doc = result.top_hits.get(query_id)
        if doc is None:
            return "-", False
        text = docs.get(doc, doc)
        return (text[: snippet - 1] + "…" if len(text) > snippet else text), golden.qrels[query_id].get(doc, 0) > 0

    changes = []
    for query_id, scores in candidate.per_query.items():
        before, after = production.per_query[query_id][metric], scores[metric]
        if before == after:
            continue
        (prod_top, prod_ok), (cand_top, cand_ok) = top(production, query_id), top(candidate, query_id)
        changes.append(QueryChange(query_id, texts[query_id], before, after, prod_top, prod_ok, cand_top, cand_ok))
    changes.sort(key=lambda c: (-abs(c.difference), c.query_id))
    return changes[:limit]


def tokenizer_of(info: VersionInfo, loaded: LoadedModel) -> str:
    """The version's tokenizer hash from its contract tag, or computed from the model when untagged."""
    if info.tags.get("tokenizer_sha256"):
        return info.tags["tokenizer_sha256"]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return tokenizer_sha256(save_tokenizer(loaded.model, Path(tmp)))


def evidence(
    info: VersionInfo,
    loaded: LoadedModel,
    metrics: dict[str, float],
    per_query: dict[str, float],
    golden: GoldenSet,
    latency: list[float],
    *,
    finite: bool = True,
) -> Evidence:
    return Evidence(
        version=info.version,
        golden_digest=golden.digest,
        metrics=metrics,
        per_query=per_query,
        embedding_dim=int(loaded.model.get_embedding_dimension()),
        tokenizer_sha256=tokenizer_of(info, loaded),
        finite=finite,
        latency_ms=percentiles_ms(np.asarray(latency)) if latency else {},
        latency_samples_ms=tuple(latency),
        weights_digest=loaded.digest,
    )


def run_gate(
    candidate: VersionInfo,
    production: VersionInfo,
    golden: GoldenSet,
    policy: GatePolicy,
    *,
    cache_dir: Path | None,
    progress: bool = True,
) -> GateRun:
    """Evaluate both sides (production's corpus vectors usually come from the cache) and decide.

    Both versions are verified against their manifests before they load: the gate scores exactly
    the files that serving will load."""
    with phase(f"loading candidate {candidate.uri} (checked against its manifest)"):
        cand_model = load_version(candidate)
    with phase(f"loading production {production.uri} (checked against its manifest)"):
        prod_model = load_version(production)
    prod_report, prod_result = evaluate_loaded(
        prod_model, golden, cache_dir=cache_dir, precision=policy.precision, progress=progress
    )
    primary = policy.primary_metric
    try:
        cand_report, cand_result = evaluate_loaded(
            cand_model, golden, cache_dir=cache_dir, precision=policy.precision, progress=progress
        )
        cand_scores = {q: m[primary] for q, m in cand_result.per_query.items()}
        changes = most_changed(golden, prod_result, cand_result, primary)
    except ModelError:
        # NaN/Inf vectors: a verdict (reject on finite_vectors), not a crash. Scored as zero everywhere.
        cand_report, cand_scores, changes = None, dict.fromkeys(prod_result.per_query, 0.0), []
    cand_latency: list[float] = []
    prod_latency: list[float] = []
    if policy.max_latency_increase is not None and cand_report is not None:
        calls = policy.latency_calls
        with (
            phase(f"latency: {calls} paired single-text calls per version", count=2 * calls, unit="calls"),
            autocast(effective_precision(policy.precision)),  # timed as it was scored and will serve
        ):
            cand_calls, prod_calls = paired_latency(cand_model.model, prod_model.model, golden.query_texts, calls=calls)
        cand_latency, prod_latency = cand_calls.tolist(), prod_calls.tolist()
    prod_side = evidence(
        production,
        prod_model,
        prod_report.metrics,
        {q: m[primary] for q, m in prod_result.per_query.items()},
        golden,
        prod_latency,
    )
    cand_metrics = cand_report.metrics if cand_report else dict.fromkeys(prod_report.metrics, 0.0)
    cand_side = evidence(
        candidate, cand_model, cand_metrics, cand_scores, golden, cand_latency, finite=cand_report is not None
    )
    with phase(f"deciding: paired permutation test over {len(cand_scores)} queries, then the checks"):
        decision = decide(policy, cand_side, prod_side)
    return GateRun(decision, cand_report, prod_report, changes)
