"""Gathering the gate's evidence: both versions re-evaluated on the same golden set, latency measured
side by side, contract facts read from the versions' tags. The decision itself is ``registry.gate.decide``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedops.core.errors import ModelError
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
class GateRun:
    decision: GateDecision
    candidate_report: EvaluationReport | None
    production_report: EvaluationReport


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
    cand_model = load_version(candidate)
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
    except ModelError:
        # NaN/Inf vectors: a verdict (reject on finite_vectors), not a crash. Scored as zero everywhere.
        cand_report, cand_scores = None, dict.fromkeys(prod_result.per_query, 0.0)
    cand_latency: list[float] = []
    prod_latency: list[float] = []
    if policy.max_latency_increase is not None and cand_report is not None:
        with autocast(effective_precision(policy.precision)):  # timed as it was scored and will serve
            cand_calls, prod_calls = paired_latency(
                cand_model.model, prod_model.model, golden.query_texts, calls=policy.latency_calls
            )
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
    return GateRun(decide(policy, cand_side, prod_side), cand_report, prod_report)
