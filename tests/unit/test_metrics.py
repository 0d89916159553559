"""Every metric against a value computed by hand, and against trec_eval (pytrec_eval)."""

from __future__ import annotations

import math
import random

import pytest

from evaluation.metrics import (
    METRIC_NAMES,
    average_precision_at_k,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    query_metrics,
    rank_by_score,
    recall_at_k,
)

# Ranking d1..d6; relevant: d2 (grade 2), d4 (grade 1), d9 (grade 1, never retrieved).
RANKING = ["d1", "d2", "d3", "d4", "d5", "d6"]
QRELS = {"d2": 2, "d4": 1, "d9": 1, "d5": 0}


def test_recall_counts_relevant_found_over_all_relevant() -> None:
    assert recall_at_k(RANKING, QRELS, 1) == 0.0
    assert recall_at_k(RANKING, QRELS, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKING, QRELS, 5) == pytest.approx(2 / 3)


def test_precision_divides_by_k_even_past_the_ranking() -> None:
    assert precision_at_k(RANKING, QRELS, 1) == 0.0
    assert precision_at_k(RANKING, QRELS, 5) == pytest.approx(2 / 5)
    assert precision_at_k(RANKING, QRELS, 10) == pytest.approx(2 / 10)


def test_mrr_is_inverse_rank_of_first_relevant_within_k() -> None:
    assert mrr_at_k(RANKING, QRELS, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(RANKING, QRELS, 1) == 0.0


def test_ndcg_uses_linear_graded_gains() -> None:
    # DCG = 2/log2(3) + 1/log2(5); ideal order d2(2), d4(1), d9(1): 2/log2(2) + 1/log2(3) + 1/log2(4)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / 1 + 1 / math.log2(3) + 1 / 2
    assert ndcg_at_k(RANKING, QRELS, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(RANKING, QRELS, 10) == pytest.approx(0.5406, abs=1e-4)  # 1.6925 / 3.1309


def test_map_divides_by_every_relevant_document() -> None:
    # hits at rank 2 (precision 1/2) and rank 4 (precision 2/4); three relevant in all
    assert average_precision_at_k(RANKING, QRELS, 100) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert average_precision_at_k(RANKING, QRELS, 3) == pytest.approx((1 / 2) / 3)


def test_no_relevant_document_scores_zero_everywhere() -> None:
    assert all(v == 0.0 for v in query_metrics(RANKING, {"d1": 0}).values())


def test_ties_are_broken_by_document_id_descending() -> None:
    assert rank_by_score({"a": 0.5, "b": 0.9, "c": 0.5, "d": 0.5}) == ["b", "d", "c", "a"]


def test_mean_metrics_is_a_macro_average() -> None:
    per_query = {"q1": query_metrics(["d2"], {"d2": 1}), "q2": query_metrics(["d1"], {"d2": 1})}
    assert mean_metrics(per_query)["ndcg_at_10"] == pytest.approx(0.5)
    assert set(mean_metrics(per_query)) == set(METRIC_NAMES)


def test_agrees_with_trec_eval_on_random_graded_rankings_with_ties() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    docs = [f"d{i:03d}" for i in range(150)]
    run, qrels = {}, {}
    for q in range(40):
        # Scores on a coarse grid so that many documents tie.
        run[f"q{q}"] = {d: rng.randint(0, 20) / 20 for d in rng.sample(docs, 120)}
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))}
    measures = {"recall.1,5,10,100", "P.1,5,10", "recip_rank", "ndcg_cut.10", "map_cut.100"}
    expected = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    names = {
        "recall_at_1": "recall_1",
        "recall_at_5": "recall_5",
        "recall_at_10": "recall_10",
        "recall_at_100": "recall_100",
        "precision_at_1": "P_1",
        "precision_at_5": "P_5",
        "precision_at_10": "P_10",
        "ndcg_at_10": "ndcg_cut_10",
        "map_at_100": "map_cut_100",
    }
    for q, scores in run.items():
        ranking = rank_by_score(scores)
        ours = query_metrics(ranking[:100], qrels[q])
        for name, trec_name in names.items():
            assert ours[name] == pytest.approx(expected[q][trec_name], abs=1e-9), (q, name)
        # trec_eval's recip_rank has no cut; ours stops at 10, so compare where the hit is in the top 10
        first = next((i for i, d in enumerate(ranking, 1) if qrels[q].get(d, 0) > 0), None)
        if first is not None and first <= 10:
            assert ours["mrr_at_10"] == pytest.approx(expected[q]["recip_rank"], abs=1e-9)
