"""Golden-set loading, digests, chunked top-k and the evaluator, with exact expectations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedops.core.errors import GoldenSetError, ModelError
from evaluation.evaluator import evaluate
from evaluation.golden import load_golden_set
from evaluation.retrieval import top_k
from tests.conftest import HELPCENTER
from tests.keyword_encoder import KeywordEncoder


def make_beir(
    root: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]], split: str = "test"
) -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    )
    return root


CORPUS = [
    {"_id": "d1", "title": "apple", "text": "red fruit"},
    {"_id": "d2", "title": "", "text": "banana yellow fruit"},
    {"_id": "d3", "title": "cherry", "text": "small red"},
]
QUERIES = [
    {"_id": "q1", "text": "apple"},
    {"_id": "q2", "text": "yellow banana"},
    {"_id": "q3", "text": "red"},
    {"_id": "q4", "text": "unjudged"},
]
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 2), ("q3", "d1", 1)]


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    return make_beir(tmp_path / "beir", CORPUS, QUERIES, QRELS)


def test_loads_split_builds_title_text_and_keeps_judged_queries(tiny_beir: Path) -> None:
    golden = load_golden_set(tiny_beir, "test")
    assert golden.corpus_texts == ["apple red fruit", "banana yellow fruit", "cherry small red"]
    assert golden.query_ids == ["q1", "q2", "q3"]  # q4 has no judgment
    assert golden.qrels["q3"] == {"d3": 2, "d1": 1}


def test_digest_ignores_order_and_changes_with_content(tmp_path: Path, tiny_beir: Path) -> None:
    digest = load_golden_set(tiny_beir).digest
    shuffled = make_beir(tmp_path / "b2", CORPUS[::-1], QUERIES[::-1], QRELS[::-1])
    assert load_golden_set(shuffled).digest == digest
    edited = make_beir(tmp_path / "b3", CORPUS, QUERIES, [*QRELS[:-1], ("q3", "d1", 2)])
    assert load_golden_set(edited).digest != digest


def test_unknown_ids_are_skipped_and_counted_or_rejected_when_strict(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "b", CORPUS, QUERIES, [*QRELS, ("q1", "nope", 1), ("zz", "d1", 1)])
    golden = load_golden_set(root)
    assert golden.skipped_qrels == 2 and "2 qrels name unknown ids" in golden.warnings[0]
    with pytest.raises(GoldenSetError, match="2 qrels name unknown ids"):
        load_golden_set(root, strict=True)


@pytest.mark.parametrize(
    "corpus, queries, message",
    [
        ([*CORPUS, CORPUS[0]], QUERIES, "duplicate document id 'd1'"),
        (CORPUS, [*QUERIES, QUERIES[1]], "duplicate query id 'q2'"),
        (CORPUS, [{"_id": "q1", "text": "  "}, *QUERIES[1:]], "empty text"),
        ([{"_id": "d1", "title": "x"}], QUERIES, "field 'text': missing"),
    ],
)
def test_malformed_golden_sets_are_typed_errors(tmp_path: Path, corpus: list, queries: list, message: str) -> None:
    with pytest.raises(GoldenSetError, match=message):
        load_golden_set(make_beir(tmp_path / "b", corpus, queries, QRELS))


def test_missing_split_names_the_available_ones(tiny_beir: Path) -> None:
    with pytest.raises(GoldenSetError, match="available splits: test"):
        load_golden_set(tiny_beir, "dev")


def test_non_utf8_corpus_names_the_row(tiny_beir: Path) -> None:
    with open(tiny_beir / "corpus.jsonl", "ab") as fh:
        fh.write(b'{"_id": "d9", "text": "caf\xe9"}\n')
    with pytest.raises(GoldenSetError, match="row 4: not UTF-8"):
        load_golden_set(tiny_beir)


@pytest.mark.parametrize(
    "file, row, field",
    [
        ("corpus.jsonl", 2, "title"),
        ("corpus.jsonl", 3, "text"),
        ("corpus.jsonl", 1, "_id"),
        ("queries.jsonl", 2, "text"),
    ],
)
def test_lone_surrogates_name_the_file_row_and_field(tmp_path: Path, file: str, row: int, field: str) -> None:
    """JSON's "\\ud800" escape loads as a str that UTF-8 (and so a tokenizer and the digest) cannot encode."""
    corpus, queries = [dict(d) for d in CORPUS], [dict(q) for q in QUERIES]
    rows = corpus if file == "corpus.jsonl" else queries
    rows[row - 1][field] = "x \ud800" if field != "_id" else "\udc00"
    root = make_beir(tmp_path / "beir", corpus, queries, QRELS)
    with pytest.raises(GoldenSetError, match=rf"row {row}, field '{field}': invalid Unicode: lone surrogate") as info:
        load_golden_set(root)
    assert str(root / file) in str(info.value)


@pytest.mark.parametrize("score", ["INF", "nan", "0.5"])
def test_relevance_grades_are_whole_numbers(tiny_beir: Path, score: str) -> None:
    with open(tiny_beir / "qrels" / "test.tsv", "a") as fh:
        fh.write(f"q1\td1\t{score}\n")
    with pytest.raises(GoldenSetError, match=f"score '{score}' is not a whole number"):
        load_golden_set(tiny_beir)


def test_chunked_top_k_equals_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    queries, corpus = rng.normal(size=(37, 16)), rng.normal(size=(503, 16))
    scores, idx = top_k(queries, corpus, 10, similarity="dot", query_chunk=8, corpus_chunk=64)
    full = queries @ corpus.T
    expected = np.argsort(-full, axis=1)[:, :10]
    assert (idx == expected).all()
    assert np.allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-5)


def test_keyword_encoder_retrieval_gives_hand_computed_metrics(tiny_beir: Path) -> None:
    encoder = KeywordEncoder(["apple", "banana", "yellow", "red", "cherry", "fruit"])
    result = evaluate(encoder, load_golden_set(tiny_beir), progress=False)
    # q1 'apple' -> d1 first; q2 'yellow banana' -> d2 first (scores 2, others 0).
    assert result.per_query["q1"]["ndcg_at_10"] == 1.0
    assert result.per_query["q2"]["recall_at_1"] == 1.0
    # q3 'red': d1 and d3 tie at 1 and d2 scores 0; ties break by id descending -> d3, d1:
    # an ideal ranking for grades (d3: 2, d1: 1), so nDCG is 1 and precision@1 is 1.
    assert result.per_query["q3"]["ndcg_at_10"] == pytest.approx(1.0)
    assert result.per_query["q3"]["precision_at_5"] == pytest.approx(2 / 5)
    assert result.metrics["mrr_at_10"] == 1.0 and result.n_queries == 3


def test_a_query_that_retrieves_the_wrong_document_first(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "b", CORPUS, [{"_id": "q1", "text": "red fruit apple"}], [("q1", "d3", 1)])
    result = evaluate(KeywordEncoder(["apple", "red", "fruit", "cherry"]), load_golden_set(root), progress=False)
    # scores: d1 = 3 (apple, red, fruit), d3 = 1 (red), d2 = 1 (fruit); tie d3 > d2 by id -> d3 second
    assert result.per_query["q1"]["mrr_at_10"] == 0.5
    assert result.per_query["q1"]["ndcg_at_10"] == pytest.approx(1 / np.log2(3))


def test_drop_self_matches_removes_the_query_from_its_own_ranking(tmp_path: Path) -> None:
    corpus = [*CORPUS, {"_id": "q1", "title": "", "text": "apple"}]
    root = make_beir(tmp_path / "b", corpus, QUERIES[:1], [("q1", "d1", 1)])
    encoder = KeywordEncoder(["apple", "red"])
    # Without dropping, q1 ties with d1 and wins on id ('q1' > 'd1'), pushing d1 to rank 2.
    assert evaluate(encoder, load_golden_set(root), progress=False).metrics["mrr_at_10"] == 0.5
    dropped = load_golden_set(root, drop_self_matches=True)
    assert evaluate(encoder, dropped, progress=False).metrics["mrr_at_10"] == 1.0


def test_nan_vectors_are_an_error_not_a_number(tiny_beir: Path) -> None:
    with pytest.raises(ModelError, match="NaN/Inf vectors for 1 of 3 documents"):
        evaluate(KeywordEncoder(["apple", "red"], fail_on="apple"), load_golden_set(tiny_beir), progress=False)


def test_bundled_helpcenter_golden_set_loads() -> None:
    golden = load_golden_set(HELPCENTER, "test")
    assert len(golden.corpus_ids) == 150 and golden.n_queries == 105 and golden.skipped_qrels == 0
