"""Shadow comparison's pure parts: overlap, rank-biased overlap, bootstrap intervals, the per-query
comparison and its summary, and the batched exact search they run on (against the one-query path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.overlap import bootstrap_mean, overlap_at_k, rbo
from indexing.search import Answer, Hit, Searcher, find
from indexing.shadow import compare, most_changed, summarize
from tests.keyword_encoder import KeywordEncoder
from tests.unit.test_indexing import KEYWORDS, MODEL, build, new_corpus


def rbo_by_definition(s: list[str], t: list[str], p: float) -> float:
    """RBO_ext straight from Webber et al.'s eq. 32, with set intersections at every depth."""
    k = min(len(s), len(t))
    agreement = [len(set(s[:d]) & set(t[:d])) / d for d in range(1, k + 1)]
    return agreement[-1] * p**k + (1 - p) / p * sum(a * p**d for d, a in enumerate(agreement, start=1))


def test_rbo_hand_computed() -> None:
    """[a b c] vs [b a d], p 0.9: agreement 0, 1, 2/3 at depths 1-3;
    (2/3)(0.729) + (0.1/0.9)(0 + 0.81 + (2/3)(0.729)) = 0.486 + 0.144 = 0.630."""
    assert rbo(["a", "b", "c"], ["b", "a", "d"], 0.9) == pytest.approx(0.630, abs=1e-12)


def test_rbo_is_one_for_identical_and_zero_for_disjoint_lists() -> None:
    ids = [f"d{i}" for i in range(10)]
    assert rbo(ids, ids) == pytest.approx(1.0, abs=1e-12)
    assert rbo(ids, [f"x{i}" for i in range(10)]) == 0.0
    assert rbo([], []) == 1.0


def test_rbo_agrees_with_the_definition_on_random_rankings() -> None:
    """The incremental computation against set intersections, 300 random pairs of top-10 lists."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        pool = [f"d{i}" for i in range(int(rng.integers(10, 25)))]
        s = list(rng.choice(pool, 10, replace=False))
        t = list(rng.choice(pool, 10, replace=False))
        p = float(rng.uniform(0.5, 0.95))
        assert rbo(s, t, p) == pytest.approx(rbo_by_definition(s, t, p), abs=1e-12)


def test_the_top_weighs_more_in_rbo_but_not_in_jaccard() -> None:
    """Swapping the first two ranks costs RBO more than swapping the last two; Jaccard sees neither."""
    ids = [f"d{i}" for i in range(10)]
    top_swapped = [ids[1], ids[0], *ids[2:]]
    bottom_swapped = [*ids[:8], ids[9], ids[8]]
    assert rbo(ids, top_swapped) < rbo(ids, bottom_swapped) < 1.0
    assert overlap_at_k(ids, top_swapped) == overlap_at_k(ids, bottom_swapped) == 1.0


def test_overlap_at_k_is_jaccard_of_the_top_k() -> None:
    """{a b c d} vs {c d e f}: 2 shared of 6."""
    assert overlap_at_k(["a", "b", "c", "d"], ["c", "d", "e", "f"], k=4) == pytest.approx(2 / 6)
    assert overlap_at_k(["a", "b", "x"], ["a", "b", "y"], k=2) == 1.0


def test_bootstrap_interval_holds_the_mean_and_is_seeded() -> None:
    values = [0.0] * 30 + [1.0] * 70
    a, b = bootstrap_mean(values, seed=1), bootstrap_mean(values, seed=1)
    assert a == b and a.mean == pytest.approx(0.7)
    assert 0.55 < a.low < 0.7 < a.high < 0.85
    assert bootstrap_mean([0.4] * 5).to_dict() == {"mean": 0.4, "low": 0.4, "high": 0.4}
    with pytest.raises(ValueError):
        bootstrap_mean([])


def answer(query: str, ids: list[str], version: str, top: float = 0.9, ms: float = 5.0) -> Answer:
    return Answer(query, [Hit(i, top - 0.01 * n) for n, i in enumerate(ids)], version, f"m-v{version}-c", ms, 1.0)


def test_compare_and_summarize_two_answer_sets() -> None:
    """q1 unchanged; q2's top two swapped; q3 all new: top-1 changed 2 of 3, per-query RBO as computed."""
    ten = [f"d{i}" for i in range(10)]
    production = [answer("q1", ten, "1"), answer("q2", ten, "1"), answer("q3", ten, "1", ms=9.0)]
    candidate = [
        answer("q1", ten, "2", top=0.8),
        answer("q2", [ten[1], ten[0], *ten[2:]], "2"),
        answer("q3", [f"n{i}" for i in range(10)], "2"),
    ]
    rows = compare(production, candidate, k=10)
    assert [r.top1_changed for r in rows] == [False, True, True]
    assert [r.overlap for r in rows] == [1.0, 1.0, 0.0]
    assert rows[0].rbo == pytest.approx(1.0) and rows[2].rbo == 0.0
    assert rows[1].rbo == pytest.approx(rbo_by_definition(ten, [h.id for h in candidate[1].hits], 0.9))
    assert rows[0].score_shift == pytest.approx(-0.1)
    assert (rows[2].production_ms, rows[2].candidate_ms) == (10.0, 6.0)
    summary = summarize(rows, 10)
    assert summary.queries == 3 and summary.top1_changed.mean == pytest.approx(2 / 3)
    assert summary.rbo.mean == pytest.approx(sum(r.rbo for r in rows) / 3)
    assert summary.metrics()["shadow_top1_changed"] == pytest.approx(2 / 3)
    assert [r.query for r in most_changed(rows, 2)] == ["q3", "q2"]
    again = compare([answer("Q3??", ten, "1")], [answer("Q3??", [f"n{i}" for i in range(10)], "2")], k=10)
    assert [r.query for r in most_changed(rows + again, 3)] == ["Q3??", "q2", "q1"]  # q3 is Q3?? again
    with pytest.raises(ValueError, match="out of step"):
        compare(production, list(reversed(candidate)), k=10)


def test_batched_exact_search_returns_what_one_query_at_a_time_does(tmp_path: Path) -> None:
    """The matrix-product path used for thousands of shadow queries: same ids, same order, same scores."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"
    build(root, store, version, documents)
    searcher = Searcher(root, find(root, MODEL, "faq"), MODEL, KeywordEncoder(KEYWORDS))
    queries = [d.text for d in documents[::3]] + ["kw3 alpha", "beta gamma"]
    one_by_one = searcher.search(queries, k=7)
    batched = searcher.search_batch(queries, k=7)
    for a, b in zip(one_by_one, batched, strict=True):
        scores = [h.score for h in a.hits]
        assert [h.score for h in b.hits] == pytest.approx(scores, abs=1e-6)
        # documents tied at the cut may be either side of it; those scoring above it are the same
        cut = scores[-1] + 1e-5
        assert {h.id for h in a.hits if h.score > cut} == {h.id for h in b.hits if h.score > cut}
        assert (b.model_version, b.index_id) == ("1", a.index_id)


def test_a_pair_must_be_two_versions_over_the_same_corpus_version() -> None:
    """Production against itself says nothing; indexes at two corpus versions would differ by documents too."""
    from types import SimpleNamespace as Side

    from embedops.core.errors import VectorIndexError
    from registry.shadow import check_pair

    def side(version: str, corpus_version: int) -> Side:
        manifest = Side(corpus="hc", corpus_version=corpus_version, model=Side(name="m"))
        return Side(model=Side(version=version), manifest=manifest)

    with pytest.raises(VectorIndexError, match="the candidate is production"):
        check_pair(side("1", 1), side("1", 1))  # type: ignore[arg-type]
    with pytest.raises(
        VectorIndexError, match=r"production's v1, the candidate's v2.*embedops index sync m --corpus hc"
    ):
        check_pair(side("1", 1), side("2", 2))  # type: ignore[arg-type]
    check_pair(side("1", 2), side("2", 2))  # type: ignore[arg-type]
