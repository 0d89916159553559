"""The promotion gate's decision: a pure function from two sides' evidence and a policy to a verdict.

No I/O here: the evidence (metrics, per-query scores, latency, contract facts) is gathered by
``registry.gate.evidence``; tests build it by hand and check both verdicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from embedops.core.errors import EmbedopsError
from evaluation.significance import compare_paired, paired_arrays
from registry.gate.policy import GatePolicy, ShadowPolicy

if TYPE_CHECKING:
    from indexing.shadow import ShadowSummary


class GateError(EmbedopsError):
    """The gate cannot decide (for example, the two sides were scored on different golden sets)."""


@dataclass(frozen=True)
class Evidence:
    """What the gate knows about one side (candidate or production)."""

    version: str
    golden_digest: str
    metrics: dict[str, float]
    per_query: dict[str, float]  # the primary metric, per query id
    embedding_dim: int
    tokenizer_sha256: str
    finite: bool = True
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p95, p99 of single-text encodes
    # Call by call, interleaved with the other side's calls: index i of both sides is one moment.
    latency_samples_ms: tuple[float, ...] = ()
    # sha256 of the weights scored; "" when unknown. Any difference moves the vector space: every index
    # the other side built is stale for this one.
    weights_digest: str = ""

    @property
    def latency_p99_ms(self) -> float | None:
        return self.latency_ms.get("p99")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    observed: float | str | None
    limit: float | str | None
    detail: str
    waived: bool = False


@dataclass(frozen=True)
class GateDecision:
    verdict: Literal["pass", "reject"]
    candidate_version: str
    production_version: str
    golden_digest: str
    primary_metric: str
    checks: list[Check]
    reindex_required: bool
    comparison: dict[str, Any]
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float]
    differences: dict[str, float] = field(default_factory=dict)  # per-query primary metric, candidate - prod
    candidate_latency_ms: dict[str, float] = field(default_factory=dict)
    production_latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(policy: GatePolicy, candidate: Evidence, production: Evidence) -> GateDecision:
    if candidate.golden_digest != production.golden_digest:
        raise GateError(
            f"candidate and production were scored on different golden sets "
            f"({candidate.golden_digest[:12]} vs {production.golden_digest[:12]}): refusing to compare"
        )
    checks: list[Check] = [
        Check(
            "finite_vectors",
            candidate.finite,
            str(candidate.finite).lower(),
            "true",
            "the candidate's vectors are all finite",
        )
    ]
    # Fine-tuned weights put documents elsewhere in the space even at the same dimension and tokenizer:
    # production's index answers a candidate's queries worse than either matched pair (issue 16).
    reindex = candidate.weights_digest != production.weights_digest or not candidate.weights_digest
    for name, cand, prod in (
        ("embedding_dim", candidate.embedding_dim, production.embedding_dim),
        ("tokenizer", candidate.tokenizer_sha256, production.tokenizer_sha256),
    ):
        same = cand == prod
        shown = (str(cand)[:12], str(prod)[:12])
        if not same and policy.allow_reindex:
            reindex = True
            checks.append(
                Check(name, True, shown[0], shown[1], f"{name} changes: the vector index must be rebuilt", waived=True)
            )
        else:
            checks.append(
                Check(
                    name,
                    same,
                    shown[0],
                    shown[1],
                    f"{name} matches production" if same else f"{name} differs from production (allow_reindex is off)",
                )
            )

    m = policy.primary_metric
    delta = candidate.metrics[m] - production.metrics[m]
    checks.append(
        Check(
            f"{m}_improvement",
            delta >= policy.min_delta,
            round(delta, 6),
            policy.min_delta,
            f"{m} {production.metrics[m]:.4f} -> {candidate.metrics[m]:.4f} ({delta:+.4f}; "
            f"needs >= {policy.min_delta:+.4f})",
        )
    )
    prod_scores, cand_scores = paired_arrays(production.per_query, candidate.per_query)
    comparison = compare_paired(
        prod_scores, cand_scores, alternative=policy.alternative, n_resamples=policy.n_resamples
    )
    if policy.alpha is not None:
        checks.append(
            Check(
                f"{m}_significance",
                comparison.p_value < policy.alpha,
                comparison.p_value,
                policy.alpha,
                f"paired permutation test ({policy.alternative}, {policy.n_resamples} "
                f"resamples): p = {comparison.p_value:.4g}, needs < {policy.alpha}",
            )
        )
    for name, allowed_drop in policy.guards.items():
        drop = production.metrics[name] - candidate.metrics[name]
        checks.append(
            Check(
                f"{name}_guard",
                drop <= allowed_drop + 1e-12,
                round(-drop, 6),
                -allowed_drop,
                f"{name} {production.metrics[name]:.4f} -> {candidate.metrics[name]:.4f} "
                f"(may drop by at most {allowed_drop})",
            )
        )
    if policy.max_latency_increase is not None:
        checks.append(latency_check(candidate, production, policy.max_latency_increase))

    keys = sorted(candidate.per_query)
    return GateDecision(
        verdict="pass" if all(c.passed for c in checks) else "reject",
        candidate_version=candidate.version,
        production_version=production.version,
        golden_digest=candidate.golden_digest,
        primary_metric=m,
        checks=checks,
        reindex_required=reindex,
        comparison=comparison.to_dict(),
        candidate_metrics=dict(candidate.metrics),
        production_metrics=dict(production.metrics),
        differences={k: candidate.per_query[k] - production.per_query[k] for k in keys},
        candidate_latency_ms=dict(candidate.latency_ms),
        production_latency_ms=dict(production.latency_ms),
    )


def latency_check(candidate: Evidence, production: Evidence, budget: float) -> Check:
    """p99 growth within ``budget``, judged so that a few unlucky calls cannot decide it.

    With a few hundred calls, p99 rests on two or three of them. With paired samples the check
    bootstraps the growth over the pairs and fails only when its one-sided 95% lower bound exceeds
    the budget: a model slower on every call is rejected, a noisy machine does not reject anyone.
    Without samples (evidence built by hand) it compares the two p99 values.
    """
    if candidate.latency_p99_ms is None or production.latency_p99_ms is None:
        return Check("latency_p99", False, None, budget, "latency was not measured on both sides")
    growth = candidate.latency_p99_ms / production.latency_p99_ms - 1
    detail = (
        f"p99 {production.latency_p99_ms:.2f} ms -> {candidate.latency_p99_ms:.2f} ms "
        f"({growth:+.0%}; may grow by at most {budget:.0%}"
    )
    b, a = np.asarray(candidate.latency_samples_ms), np.asarray(production.latency_samples_ms)
    if len(a) < 20 or len(a) != len(b):
        return Check("latency_p99", growth <= budget, round(growth, 4), budget, detail + ")")
    pairs = np.random.default_rng(0).integers(0, len(a), size=(2000, len(a)))
    resampled = np.percentile(b[pairs], 99, axis=1) / np.percentile(a[pairs], 99, axis=1) - 1
    lower = float(np.quantile(resampled, 0.05))
    return Check("latency_p99", lower <= budget, round(growth, 4), budget, detail + f"; 95% lower bound {lower:+.0%})")


def shadow_checks(policy: ShadowPolicy, summary: ShadowSummary | None, why_none: str = "") -> list[Check]:
    """The shadow comparison's thresholds as checks; none when the policy sets none (report-only).
    Without a comparison (``summary`` None: the candidate had no index to answer with) a threshold fails."""
    checks = []
    for name, limit, at_least in (
        ("shadow_rbo", policy.min_rbo, True),
        ("shadow_top1_change", policy.max_top1_change, False),
    ):
        if limit is None:
            continue
        if summary is None:
            checks.append(Check(name, False, None, limit, f"no shadow comparison: {why_none}"))
            continue
        interval = summary.rbo if at_least else summary.top1_changed
        observed = interval.mean
        passed = observed >= limit if at_least else observed <= limit
        what = "rank-biased overlap with production" if at_least else "share of live queries whose top result changes"
        bound = "at least" if at_least else "at most"
        checks.append(
            Check(
                name,
                passed,
                round(observed, 4),
                limit,
                f"{what} {observed:.3f} [{interval.low:.3f}, {interval.high:.3f}] on {summary.queries} queries "
                f"(must be {bound} {limit})",
            )
        )
    return checks


def with_checks(decision: GateDecision, extra: list[Check]) -> GateDecision:
    """The decision with ``extra`` checks added and its verdict taken again."""
    if not extra:
        return decision
    checks = [*decision.checks, *extra]
    return replace(decision, checks=checks, verdict="pass" if all(c.passed for c in checks) else "reject")
