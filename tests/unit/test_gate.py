"""The gate's decision on hand-built evidence: both verdicts, and each check's reason to fail."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from embedops.core.errors import ConfigError
from registry.gate.decision import Evidence, GateError, decide
from registry.gate.policy import GatePolicy, load_policy

DIGEST = "d" * 64


def evidence(
    version: str,
    per_query: np.ndarray,
    *,
    recall: float = 0.9,
    mrr: float = 0.7,
    p99: float = 10.0,
    dim: int = 384,
    tokenizer: str = "t" * 64,
    weights: str | None = None,
) -> Evidence:
    scores = {f"q{i}": float(v) for i, v in enumerate(per_query)}
    return Evidence(
        version=version,
        golden_digest=DIGEST,
        metrics={"ndcg_at_10": float(np.mean(per_query)), "recall_at_10": recall, "mrr_at_10": mrr},
        per_query=scores,
        embedding_dim=dim,
        tokenizer_sha256=tokenizer,
        latency_ms={"p50": p99 / 2, "p95": p99 * 0.9, "p99": p99},
        weights_digest=weights if weights is not None else f"weights-of-v{version}",
    )


rng = np.random.default_rng(0)
BASE = rng.uniform(0.3, 0.8, size=150)
PRODUCTION = evidence("1", BASE)
BETTER = evidence("2", np.clip(BASE + 0.04 + rng.normal(0, 0.03, 150), 0, 1))  # +~0.04 nDCG on most queries
POLICY = GatePolicy(n_resamples=2000)


def latency(side: Evidence, p99: float) -> Evidence:
    return replace(side, latency_ms=side.latency_ms | {"p99": p99})


def failed(decision) -> set[str]:
    return {c.name for c in decision.failed_checks}


def test_a_clearly_better_candidate_passes_every_check() -> None:
    decision = decide(POLICY, BETTER, PRODUCTION)
    assert decision.verdict == "pass" and failed(decision) == set()
    assert decision.comparison["p_value"] < 0.001 and decision.reindex_required  # new weights: new vectors
    assert decision.differences["q0"] == pytest.approx(BETTER.per_query["q0"] - BASE[0])


def test_the_same_model_is_rejected_for_no_improvement() -> None:
    decision = decide(POLICY, replace(PRODUCTION, version="2"), PRODUCTION)
    assert decision.verdict == "reject"
    assert failed(decision) == {"ndcg_at_10_improvement", "ndcg_at_10_significance"}


def test_a_small_noisy_gain_is_rejected_as_not_significant() -> None:
    noisy = evidence("2", np.clip(BASE + 0.006 + rng.normal(0, 0.15, 150), 0, 1))
    decision = decide(GatePolicy(n_resamples=2000, min_delta=0.0), noisy, PRODUCTION)
    assert "ndcg_at_10_significance" in failed(decision) and decision.verdict == "reject"


def test_a_guard_metric_drop_rejects_even_a_better_primary() -> None:
    decision = decide(POLICY, replace(BETTER, metrics=BETTER.metrics | {"recall_at_10": 0.88}), PRODUCTION)
    assert failed(decision) == {"recall_at_10_guard"}
    # exactly at the allowed drop is still fine
    at_limit = replace(BETTER, metrics=BETTER.metrics | {"recall_at_10": 0.89})
    assert decide(POLICY, at_limit, PRODUCTION).verdict == "pass"


def test_latency_growth_beyond_the_budget_rejects() -> None:
    assert failed(decide(POLICY, latency(BETTER, 12.6), PRODUCTION)) == {"latency_p99"}
    assert decide(POLICY, latency(BETTER, 12.4), PRODUCTION).verdict == "pass"
    assert (
        decide(GatePolicy(n_resamples=2000, max_latency_increase=None), latency(BETTER, 99.0), PRODUCTION).verdict
        == "pass"
    )


def calls(side: Evidence, samples: np.ndarray) -> Evidence:
    p = {f"p{q}": float(np.percentile(samples, q)) for q in (50, 95, 99)}
    return replace(side, latency_ms=p, latency_samples_ms=tuple(samples.tolist()))


def test_latency_samples_reject_a_slower_model_but_not_a_few_unlucky_calls() -> None:
    noise = np.random.default_rng(1)
    steady = 10 + noise.gamma(2.0, 0.5, size=200)  # production: ~11 ms per call
    same = 10 + noise.gamma(2.0, 0.5, size=200)
    # 60% slower on every call: rejected, the bootstrap lower bound (+41%) is above the budget (+25%).
    slower = decide(POLICY, calls(BETTER, same * 1.6), calls(PRODUCTION, steady))
    assert failed(slower) == {"latency_p99"} and "95% lower bound" in slower.failed_checks[0].detail
    # As fast, but three calls hit a busy moment (10x): the point p99 grows far past 25%...
    unlucky = same.copy()
    unlucky[[20, 90, 160]] *= 10
    decision = decide(POLICY, calls(BETTER, unlucky), calls(PRODUCTION, steady))
    (check,) = [c for c in decision.checks if c.name == "latency_p99"]
    assert check.observed > 1.0
    # ...but three calls of 200 are no evidence of a slower model: the lower bound stays in budget.
    assert check.passed and decision.verdict == "pass"


def test_any_weights_change_requires_the_index_to_be_rebuilt() -> None:
    """Same dimension and tokenizer but other weights still move every vector; the same weights
    (a folder registered twice) do not; unknown weights are taken as changed."""
    same_weights = replace(BETTER, weights_digest=PRODUCTION.weights_digest)
    unknown = replace(BETTER, weights_digest="")
    assert decide(POLICY, BETTER, PRODUCTION).reindex_required
    assert not decide(POLICY, same_weights, PRODUCTION).reindex_required
    assert decide(POLICY, unknown, replace(PRODUCTION, weights_digest="")).reindex_required


def test_a_contract_change_rejects_unless_reindex_is_allowed() -> None:
    wider = replace(BETTER, embedding_dim=768, tokenizer_sha256="u" * 64)
    assert failed(decide(POLICY, wider, PRODUCTION)) == {"embedding_dim", "tokenizer"}
    allowed = decide(GatePolicy(n_resamples=2000, allow_reindex=True), wider, PRODUCTION)
    assert allowed.verdict == "pass" and allowed.reindex_required
    assert {c.name for c in allowed.checks if c.waived} == {"embedding_dim", "tokenizer"}


def test_non_finite_vectors_reject() -> None:
    assert failed(decide(POLICY, replace(BETTER, finite=False), PRODUCTION)) == {"finite_vectors"}


def test_different_golden_digests_are_refused() -> None:
    with pytest.raises(GateError, match="different golden sets"):
        decide(POLICY, replace(BETTER, golden_digest="e" * 64), PRODUCTION)


def test_policy_file_overrides_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("min_delta: 0.01\nguards: {recall_at_10: 0.02}\ngolden: ../golden\n")
    policy = load_policy(path)
    assert policy.min_delta == 0.01 and policy.guards == {"recall_at_10": 0.02} and policy.alpha == 0.05
    assert policy.golden == str((tmp_path.parent / "golden").resolve())
    for text, message in [
        ("min_delta: -1\n", "min_delta"),
        ("alpha: 1.5\n", "alpha"),
        ("colour: red\n", "colour"),
        ("primary_metric: bleu\n", "not a metric"),
        ("guards: {ndcg_at_10: 0.1}\n", "cannot also"),
        ("guards: {recall_at_10: 3}\n", r"within \[0, 1\]"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_policy(path)


def test_the_report_opens_with_the_verdict_and_its_reason() -> None:
    from registry.gate.report import verdict_sentence

    passed = decide(POLICY, BETTER, PRODUCTION)
    delta = passed.candidate_metrics["ndcg_at_10"] - passed.production_metrics["ndcg_at_10"]
    assert verdict_sentence(passed) == (
        f"PASS: v2 may replace production v1, because every check holds: ndcg_at_10 {delta:+.4f} "
        f"(p = {passed.comparison['p_value']:.3g}) against production."
    )
    rejected = decide(POLICY, replace(PRODUCTION, version="2"), PRODUCTION)
    sentence = verdict_sentence(rejected)
    assert sentence.startswith("REJECT: v2 stays out of production, because ndcg_at_10_improvement: ")
    assert "ndcg_at_10_significance: " in sentence and sentence.endswith("(ndcg_at_10 +0.0000 (p = 1)).")


def test_the_most_changed_queries_come_first_with_both_top_hits() -> None:
    from evaluation.evaluator import EvaluationResult
    from evaluation.golden import GoldenSet
    from registry.gate.evidence import most_changed

    golden = GoldenSet(
        path=Path("g"),
        split="test",
        corpus_ids=["d1", "d2", "d3"],
        corpus_texts=["pause a subscription", "export invoices", "reset a password"],
        query_ids=["q1", "q2", "q3"],
        query_texts=["how to pause", "invoice export", "forgot password"],
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}},
        digest=DIGEST,
    )

    def result(scores: dict[str, float], tops: dict[str, str]) -> EvaluationResult:
        per_query = {q: {"ndcg_at_10": s} for q, s in scores.items()}
        return EvaluationResult({}, per_query, DIGEST, "test", 3, 3, 0.0, top_hits=tops)

    production = result({"q1": 1.0, "q2": 0.5, "q3": 0.2}, {"q1": "d1", "q2": "d3", "q3": "d1"})
    candidate = result({"q1": 0.3, "q2": 0.5, "q3": 1.0}, {"q1": "d2", "q2": "d3", "q3": "d3"})
    changes = most_changed(golden, production, candidate, "ndcg_at_10")
    # q3 gained 0.8, q1 lost 0.7, q2 did not move and is left out.
    assert [(c.query, round(c.difference, 3)) for c in changes] == [("forgot password", 0.8), ("how to pause", -0.7)]
    gained, lost = changes
    assert (gained.production_top, gained.production_top_relevant) == ("pause a subscription", False)
    assert (gained.candidate_top, gained.candidate_top_relevant) == ("reset a password", True)
    assert (lost.production_top_relevant, lost.candidate_top) == (True, "export invoices")


# ---------------------------------------------------------------- the shadow block


def shadow_summary(rbo_mean: float, top1: float):
    from evaluation.overlap import Interval
    from indexing.shadow import ShadowSummary

    return ShadowSummary(
        queries=500, k=10, overlap=Interval(0.5, 0.45, 0.55), rbo=Interval(rbo_mean, rbo_mean - 0.02, rbo_mean + 0.02),
        top1_changed=Interval(top1, top1 - 0.03, top1 + 0.03), score_shift=Interval(0.0, -0.01, 0.01),
        latency_ms={side: {"p50": 5.0, "p99": 9.0, "calls": 100.0} for side in ("production", "candidate")},
    )  # fmt: skip


def test_shadow_thresholds_are_checks_with_both_verdicts() -> None:
    """min_rbo 0.6 / max_top1_change 0.3: RBO 0.7 with 20% changed passes both; RBO 0.4 with 45% changed
    fails both and turns a passing gate into a rejection; no thresholds: report-only, no checks."""
    from registry.gate.decision import shadow_checks, with_checks
    from registry.gate.policy import ShadowPolicy

    policy = ShadowPolicy(traffic="t", min_rbo=0.6, max_top1_change=0.3)
    passed = decide(GatePolicy(n_resamples=500), BETTER, PRODUCTION)
    assert passed.passed
    good = shadow_checks(policy, shadow_summary(0.7, 0.2))
    assert [(c.name, c.passed, c.observed) for c in good] == [
        ("shadow_rbo", True, 0.7),
        ("shadow_top1_change", True, 0.2),
    ]
    assert with_checks(passed, good).passed
    bad = shadow_checks(policy, shadow_summary(0.4, 0.45))
    assert [c.passed for c in bad] == [False, False]
    assert (
        "rank-biased overlap with production 0.400 [0.380, 0.420] on 500 queries (must be at least 0.6)"
        in bad[0].detail
    )
    rejected = with_checks(passed, bad)
    assert rejected.verdict == "reject" and [c.name for c in rejected.failed_checks] == [
        "shadow_rbo",
        "shadow_top1_change",
    ]
    assert shadow_checks(ShadowPolicy(traffic="t"), shadow_summary(0.1, 0.9)) == []
    missing = shadow_checks(policy, None, "v2 has no index of corpus 'hc'")
    assert [c.passed for c in missing] == [False, False] and "no shadow comparison: v2 has no index" in missing[
        0
    ].detail


def test_a_shadow_block_in_a_policy_file_reads_its_traffic_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("shadow:\n  traffic: traffic/live\n  sample: 500\n  min_rbo: 0.5\n")
    policy = load_policy(path)
    assert policy.shadow is not None and policy.shadow.traffic == str(tmp_path / "traffic" / "live")
    assert (policy.shadow.sample, policy.shadow.min_rbo, policy.shadow.max_top1_change) == (500, 0.5, None)
    path.write_text("shadow:\n  traffic: t\n  min_overlap: 0.5\n")
    with pytest.raises(ConfigError, match="min_overlap"):
        load_policy(path)
