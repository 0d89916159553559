"""indexing/: corpus files and versions, the pure index checks, and build, resume, verify and search
on a real LanceDB table in a temporary folder, with a keyword encoder (no MLflow, no real model)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedops.core import progress
from embedops.core.errors import CorpusError, DataError, VectorIndexError
from indexing import lance
from indexing.build import BuildOptions, BuildResult, build_index
from indexing.checks import chunk_plan, committed_chunks, file_problems, recall_at_k, vector_problems
from indexing.corpus import Change, Document, corpus_digest, delta, read_changes, read_documents
from indexing.corpus_store import CorpusStore, CorpusVersion
from indexing.inventory import freshness_lag, inventory
from indexing.manifest import ModelIdentity, index_id, read_manifest
from indexing.search import Searcher, find
from tests.keyword_encoder import KeywordEncoder

AT = "2026-12-01T08:00:00+00:00"
N_DOCS = 40
CHUNK = 8
KEYWORDS = [f"kw{i}" for i in range(N_DOCS)] + ["alpha", "beta", "gamma", "delta"]
MODEL = ModelIdentity(
    name="kw-model",
    version="1",
    weights_digest="a" * 64,
    tokenizer_sha256="b" * 64,
    dimension=len(KEYWORDS),
    normalize=False,
    similarity="cosine",
    max_seq_length=128,
)
OPTIONS = BuildOptions(chunk_size=CHUNK)


@pytest.fixture(autouse=True)
def no_progress_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds draw no tqdm bar on the test log (a killed build would leave one half drawn)."""
    monkeypatch.setattr(progress, "_bars", False)


class Killed(Exception):
    """Stands for a kill between two chunks."""


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def doc(doc_id: str, text: str, at: str = AT) -> Document:
    return Document(doc_id, text, at)


def corpus_rows() -> list[dict]:
    """40 BEIR rows: doc i has its own keyword kw<i> (so its text finds it first) and a length that varies."""
    shared = ["alpha", "beta", "gamma", "delta"]
    return [
        {"_id": f"d{i:02d}", "title": f"kw{i}", "text": " ".join([shared[i % 4]] + ["filler"] * (i % 7))}
        for i in range(N_DOCS)
    ]


def new_corpus(tmp_path: Path, name: str = "faq") -> tuple[CorpusStore, CorpusVersion, list[Document]]:
    """A corpus store under ``tmp_path`` with version 1 of ``name`` (the 40 rows above)."""
    source = write_jsonl(tmp_path / f"{name}.jsonl", corpus_rows())
    store = CorpusStore(tmp_path / "corpora")
    version = store.add(name, read_documents(source, at=AT), source=str(source))
    return store, version, store.documents(version)


def build(root: Path, store: CorpusStore, version: CorpusVersion, documents: list[Document], **kwargs) -> BuildResult:
    return build_index(
        root,
        MODEL,
        KeywordEncoder(KEYWORDS),
        version,
        documents,
        recheck=lambda: store.documents(version),
        options=OPTIONS,
        **kwargs,
    )


def rewrite_snapshot(store: CorpusStore, version: CorpusVersion, doc_id: str, text: str) -> None:
    """Edit one text of a stored snapshot in place, as a person or a bad script would."""
    path = store.folder(version.name) / f"v{version.version:06d}.parquet"
    table = pq.read_table(path).to_pydict()
    table["text"] = [text if i == doc_id else t for i, t in zip(table["id"], table["text"], strict=True)]
    pq.write_table(pa.table(table), path)


def vectors_by_id(root: Path, name: str) -> dict[str, np.ndarray]:
    ids, vectors = lance.vectors(lance.open_table(root, name))
    return dict(zip(ids, vectors, strict=True))


# ---------------------------------------------------------------- corpus files


def test_beir_corpus_text_is_title_space_text_and_a_folder_means_its_corpus_jsonl(tmp_path: Path) -> None:
    """BEIR rows join title and text with one space (an empty title adds nothing); a folder reads corpus.jsonl."""
    write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Passwords", "text": "How to reset it.", "metadata": {}},
            {"_id": "d2", "title": "", "text": " Billing dates "},
            {"_id": 7, "title": "Numeric id", "text": "kept as text"},
        ],
    )
    assert read_documents(tmp_path, at=AT) == [
        doc("d1", "Passwords How to reset it."),
        doc("d2", "Billing dates"),
        doc("7", "Numeric id kept as text"),
    ]


def test_csv_corpus_with_named_id_and_text_fields(tmp_path: Path) -> None:
    """--id-field and the text fields pick the columns; the others are ignored."""
    path = tmp_path / "c.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["key", "heading", "content", "other"])
        writer.writerow(["k1", "Refunds", "Within 30 days", "x"])
        writer.writerow(["k2", "Shipping", "Two days", "y"])
    found = read_documents(path, at=AT, id_field="key", text_fields=("heading", "content"))
    assert found == [doc("k1", "Refunds Within 30 days"), doc("k2", "Shipping Two days")]
    only_content = read_documents(path, at=AT, id_field="key", text_fields=("content",))
    assert [d.text for d in only_content] == ["Within 30 days", "Two days"]


def test_parquet_corpus(tmp_path: Path) -> None:
    """A Parquet file reads like the others, with the default id and text fields."""
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["first text", "second text"], "n": [1, 2]}), path)
    assert read_documents(path, at=AT) == [doc("p1", "first text"), doc("p2", "second text")]


@pytest.mark.parametrize(
    "rows, kwargs, where, message",
    [
        (
            [{"_id": "a", "text": "x"}, {"_id": "b", "text": "y"}, {"_id": "a", "text": "z"}],
            {},
            "row 3",
            r"duplicate id 'a' \(first at row 1\)",
        ),
        ([{"_id": "a", "text": "x"}, {"_id": "b", "text": "  "}], {}, "row 2, field 'text'", "no text"),
        ([{"_id": "a", "text": "x"}, {"_id": "b", "title": None}], {}, "row 2, field 'text'", "no text"),
        ([{"_id": "a", "text": "x"}, {"text": "y"}], {}, "row 2, field '_id'", "missing or empty id"),
        ([{"_id": "a", "text": "x"}, {"_id": " ", "text": "y"}], {}, "row 2, field '_id'", "missing or empty id"),
        ([{"_id": "a", "text": "x"}, {"_id": "b", "text": 5}], {}, "row 2, field 'text'", "expected text, got int"),
        ([{"_id": "a", "text": "x"}], {"id_field": "doc"}, "", r"no field 'doc' \(found _id, text\)"),
        ([{"_id": "a", "text": "x"}], {"text_fields": ("body",)}, "", r"no text field body \(found _id, text\)"),
        ([{"key": "a", "text": "x"}], {}, "", r"no id field \(looked for _id, id; found key, text\)"),
    ],
)
def test_bad_corpus_rows_are_refused_naming_file_row_and_field(
    tmp_path: Path, rows: list[dict], kwargs: dict, where: str, message: str
) -> None:
    """Each refusal is a CorpusError that names the file and, for a row's problem, its row and field."""
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(CorpusError, match=message) as info:
        read_documents(path, at=AT, **kwargs)
    assert f"file {path}" in str(info.value)
    assert where in str(info.value)


def test_csv_empty_text_names_its_line(tmp_path: Path) -> None:
    """In a CSV the row is the file's line (the header is line 1)."""
    path = tmp_path / "c.csv"
    path.write_text("key,heading,content\nk1,A,b\nk2,,\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"file {path}, row 3, field 'content': no text"):
        read_documents(path, at=AT, id_field="key", text_fields=("heading", "content"))


def write_non_utf8_jsonl(path: Path) -> Path:
    path.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "caf\xe9"}\n')
    return path


def write_non_utf8_parquet(path: Path) -> Path:
    text = pa.array([b"ok", b"caf\xe9"], pa.binary()).view(pa.string())  # Arrow does not validate a view
    pq.write_table(pa.table({"id": ["a", "b"], "text": text}), path)
    return path


def write_lone_surrogate(path: Path) -> Path:
    path.write_text('{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "x \\ud800"}\n', encoding="utf-8")
    return path


INVALID_TEXT = [
    (write_non_utf8_jsonl, "c.jsonl", r"row 2: not UTF-8 text \(byte 0xe9\)"),
    (write_non_utf8_parquet, "c.parquet", r"row 2, field 'text': not UTF-8 text"),
    (write_lone_surrogate, "c.jsonl", r"row 2, field 'text': invalid Unicode: lone surrogate U\+D800"),
]


@pytest.mark.parametrize("write, name, message", INVALID_TEXT)
def test_text_that_is_not_utf8_is_refused_where_it_is(tmp_path: Path, write, name: str, message: str) -> None:
    """Undecodable bytes (JSONL, Parquet) and an escaped lone surrogate are refused with file, row and field."""
    path = write(tmp_path / name)
    with pytest.raises(DataError, match=message) as info:
        read_documents(path, at=AT)
    assert f"file {path}" in str(info.value)


@pytest.mark.parametrize("write, name, message", INVALID_TEXT)
def test_text_that_is_not_utf8_is_a_corpus_error(tmp_path: Path, write, name: str, message: str) -> None:
    """read_documents' docstring: text that is not UTF-8 is a CorpusError, like every other refusal."""
    with pytest.raises(CorpusError):
        read_documents(write(tmp_path / name), at=AT)


def test_a_refused_add_or_update_stores_nothing(tmp_path: Path) -> None:
    """A second add of a name, or an update deleting an unknown id, leaves the versions and files as they were."""
    store, first, _ = new_corpus(tmp_path)
    files = sorted(p.name for p in store.folder("faq").iterdir())
    with pytest.raises(CorpusError, match="corpus 'faq' exists"):
        store.add("faq", [doc("z", "other")], source="x")
    changes = [Change("upsert", "new", "new text", AT), Change("delete", "nope", "", AT)]
    with pytest.raises(CorpusError, match=r"row 2: delete of id 'nope', which the corpus does not have"):
        store.update("faq", changes, source="changes.jsonl")
    assert store.versions("faq") == [first]
    assert sorted(p.name for p in store.folder("faq").iterdir()) == files


def test_update_of_an_unknown_corpus_is_refused_and_names_the_known_ones(tmp_path: Path) -> None:
    """``get`` of a name nobody added says which corpora exist."""
    store, _, _ = new_corpus(tmp_path)
    with pytest.raises(CorpusError, match=r"no corpus 'help' .*\(corpora: faq\)"):
        store.update("help", [Change("upsert", "a", "b", AT)], source="x")
    with pytest.raises(CorpusError, match=r"has no version 4 \(versions 1 to 1\)"):
        store.get("faq", 4)


# ---------------------------------------------------------------- changes and versions


def test_read_changes_upserts_deletes_and_utc_times(tmp_path: Path) -> None:
    """op defaults to upsert; a delete needs no text; every ts becomes a UTC ISO time."""
    path = write_jsonl(
        tmp_path / "ch.jsonl",
        [
            {"_id": "a", "title": "New", "text": "body", "ts": "2026-12-01T10:00:00+01:00"},
            {"op": "delete", "_id": "b", "ts": "2026-12-01T09:30:00Z"},
            {"op": "upsert", "_id": "c", "title": "", "text": "only body", "ts": "2026-12-01T09:45:00"},
        ],
    )
    assert read_changes(path) == [
        Change("upsert", "a", "New body", "2026-12-01T09:00:00+00:00"),
        Change("delete", "b", "", "2026-12-01T09:30:00+00:00"),
        Change("upsert", "c", "only body", "2026-12-01T09:45:00+00:00"),
    ]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"_id": "b", "text": "y"}, r"row 2, field 'ts': missing or not an ISO time"),
        ({"_id": "b", "text": "y", "ts": "yesterday"}, r"row 2, field 'ts': missing or not an ISO time"),
        ({"op": "remove", "_id": "b", "ts": AT}, r"row 2, field 'op': op 'remove' is not upsert or delete"),
    ],
)
def test_bad_change_rows_are_refused(tmp_path: Path, row: dict, message: str) -> None:
    """A change without its event time, or with an unknown op, is refused with its row and field."""
    path = write_jsonl(tmp_path / "ch.jsonl", [{"_id": "a", "text": "x", "ts": AT}, row])
    with pytest.raises(CorpusError, match=message):
        read_changes(path)


def test_a_change_file_starting_with_a_delete_keeps_the_titles_of_its_upserts(tmp_path: Path) -> None:
    """Row order does not change an upsert's text: title + space + text either way."""
    delete = {"op": "delete", "_id": "a", "ts": AT}
    upsert = {"_id": "b", "title": "T", "text": "body", "ts": AT}
    upsert_first = read_changes(write_jsonl(tmp_path / "one.jsonl", [upsert, delete]))
    delete_first = read_changes(write_jsonl(tmp_path / "two.jsonl", [delete, upsert]))
    assert upsert_first[0].text == "T body"
    assert delete_first[1] == upsert_first[0]


def test_updates_make_versions_with_counts_event_times_and_content_digests(tmp_path: Path) -> None:
    """Versions 1, 2, 3; added/changed/deleted count what really changed; first/last event are the
    oldest and newest change times; a version with the same documents as another has its digest."""
    store = CorpusStore(tmp_path / "corpora")
    v1 = store.add("kb", [doc("a", "apple"), doc("b", "banana"), doc("c", "cherry")], source="kb.jsonl")
    assert (v1.version, v1.rows, v1.added, v1.changed, v1.deleted) == (1, 3, 3, 0, 0)
    assert (v1.first_event, v1.last_event) == (AT, AT)

    path = write_jsonl(
        tmp_path / "ch.jsonl",
        [
            {"_id": "b", "text": "blueberry", "ts": "2026-12-01T10:00:00Z"},  # changed
            {"_id": "a", "text": "apple", "ts": "2026-12-01T09:30:00Z"},  # same text: not a change
            {"_id": "d", "text": "date", "ts": "2026-12-01T11:00:00+01:00"},  # added, at 10:00 UTC
            {"op": "delete", "_id": "c", "ts": "2026-12-01T09:45:00Z"},  # deleted
        ],
    )
    v2 = store.update("kb", read_changes(path), source=str(path))
    assert (v2.version, v2.rows, v2.added, v2.changed, v2.deleted) == (2, 3, 1, 1, 1)
    assert (v2.first_event, v2.last_event) == ("2026-12-01T09:30:00+00:00", "2026-12-01T10:00:00+00:00")
    assert {d.id: d.text for d in store.documents(v2)} == {"a": "apple", "b": "blueberry", "d": "date"}
    assert v2.digest != v1.digest

    back = [
        Change("upsert", "c", "cherry", "2026-12-01T12:00:00+00:00"),
        Change("upsert", "b", "banana", "2026-12-01T12:00:00+00:00"),
        Change("delete", "d", "", "2026-12-01T12:00:00+00:00"),
    ]
    v3 = store.update("kb", back, source="back")
    assert (v3.version, v3.added, v3.changed, v3.deleted) == (3, 1, 1, 1)
    assert v3.digest == v1.digest  # the same documents as version 1, in another order and with other times
    assert [v.version for v in store.versions("kb")] == [1, 2, 3]
    assert store.get("kb") == v3 and store.get("kb", 2) == v2
    assert store.names() == ["kb"]


def test_digest_depends_on_ids_and_texts_only() -> None:
    """The digest is sha256 over (id, text) in id order: order and update times do not change it."""
    docs = [doc("b", "two"), doc("a", "one"), doc("c", "three")]
    moved = [doc("c", "three", "2030-01-01T00:00:00+00:00"), doc("a", "one"), doc("b", "two")]
    assert corpus_digest(docs) == corpus_digest(moved)
    assert corpus_digest(docs) != corpus_digest([doc("a", "one"), doc("b", "two"), doc("c", "three!")])
    assert corpus_digest(docs) != corpus_digest([doc("a", "one"), doc("b", "two"), doc("d", "three")])


def test_delta_lists_new_or_changed_texts_and_gone_ids() -> None:
    """old a,b,c -> new a (same), b (new text), d (new): upsert b and d, delete c."""
    old = [doc("a", "x"), doc("b", "y"), doc("c", "z")]
    new = [doc("a", "x", "2027-01-01T00:00:00+00:00"), doc("b", "Y"), doc("d", "w")]
    found = delta(old, new)
    assert [d.id for d in found.upserts] == ["b", "d"]
    assert found.deletes == ["c"]
    assert len(found) == 3
    assert len(delta(old, old)) == 0


def test_update_refuses_to_delete_every_document(tmp_path: Path) -> None:
    """A corpus cannot become empty; nothing is written."""
    store = CorpusStore(tmp_path / "corpora")
    store.add("kb", [doc("a", "apple")], source="kb")
    with pytest.raises(CorpusError, match="would delete every document"):
        store.update("kb", [Change("delete", "a", "", AT)], source="ch")
    assert [v.version for v in store.versions("kb")] == [1]


def test_a_snapshot_edited_on_disk_is_refused(tmp_path: Path) -> None:
    """Reading a version checks its digest: one text changed in the Parquet file is a CorpusError."""
    store, version, _ = new_corpus(tmp_path)
    rewrite_snapshot(store, version, "d03", "edited by hand")
    with pytest.raises(CorpusError, match="version 1 of corpus 'faq' changed on disk"):
        store.documents(version)


# ---------------------------------------------------------------- pure checks


def test_chunk_plan_is_longest_first_and_the_same_for_any_input_order() -> None:
    """Texts by length descending, ties by id; a shuffled corpus gives the same chunks."""
    docs = [doc(f"x{i}", "w" * (i % 5 + 1)) for i in range(13)]
    plan = chunk_plan(docs, 4)
    assert [len(part) for part in plan] == [4, 4, 4, 1]
    flat = [d for part in plan for d in part]
    assert [(-len(d.text), d.id) for d in flat] == sorted((-len(d.text), d.id) for d in docs)
    assert [d.id for d in plan[0]] == ["x4", "x9", "x3", "x8"]  # length 5: x4, x9; length 4: x3, x8
    shuffled = docs[:]
    random.Random(1).shuffle(shuffled)
    assert chunk_plan(shuffled, 4) == plan


def test_committed_chunks_are_those_whose_every_row_is_present() -> None:
    """Chunk 0 whole, chunk 1 with one of its two rows, chunk 2 whole: 0 and 2 are committed."""
    plan = chunk_plan([doc("a", "aaa"), doc("b", "bbb"), doc("c", "cc"), doc("d", "dd"), doc("e", "e")], 2)
    assert [[d.id for d in part] for part in plan] == [["a", "b"], ["c", "d"], ["e"]]
    assert committed_chunks(plan, ["a", "b", "c", "e"], [0, 0, 1, 2]) == {0, 2}
    assert committed_chunks(plan, [], []) == set()


def test_vector_problems_finds_each_kind_of_problem() -> None:
    """Clean rows pass; each defect is named, with the ids it concerns."""
    good = np.ones((3, 4), dtype=np.float32)
    expected = {"a", "b", "c"}
    assert vector_problems(["a", "b", "c"], good, expected, 4) == []
    assert vector_problems(["a", "b"], good[:2], expected, 4) == [
        "2 rows, the corpus version has 3",
        "1 documents missing (e.g. c)",
    ]
    assert vector_problems(["a", "a", "b"], good, expected, 4) == [
        "ids stored twice: a",
        "1 documents missing (e.g. c)",
    ]
    assert vector_problems(["a", "b", "z"], good, expected, 4) == [
        "1 documents missing (e.g. c)",
        "1 rows not in the corpus version (e.g. z)",
    ]
    nan = good.copy()
    nan[1, 2] = np.nan
    assert vector_problems(["a", "b", "c"], nan, expected, 4) == ["1 vectors with NaN or infinity (e.g. id b)"]
    assert vector_problems(["a", "b", "c"], np.ones((3, 5)), expected, 4) == [
        "vectors of shape (3, 5), the model's dimension is 4"
    ]


def test_recall_at_k_is_the_mean_share_of_the_exact_top_k_found() -> None:
    """[a,b,c] vs exact [a,c,d] at k=3 finds 2 of 3; with a second query finding 1 of 2: (2/3 + 1/2) / 2."""
    assert recall_at_k([["a", "b", "c"]], [["a", "c", "d"]], k=3) == pytest.approx(2 / 3)
    assert recall_at_k([["a", "b", "c"], ["x", "y"]], [["a", "c", "d"], ["y", "z"]], k=3) == pytest.approx(
        (2 / 3 + 1 / 2) / 2
    )
    assert recall_at_k([["a", "b", "c"]], [["c", "b", "a"]], k=2) == pytest.approx(1 / 2)  # {a,b} & {c,b}
    with pytest.raises(ValueError):
        recall_at_k([], [], k=3)


def test_file_problems_names_changed_and_missing_files_only() -> None:
    """A file written after verification is not a problem; a changed or missing one is."""
    expected = {"t/a": "1", "t/b": "2", "t/c": "3"}
    assert file_problems(expected, {**expected, "t/new": "9"}) == []
    assert file_problems(expected, {"t/a": "1", "t/b": "X", "t/new": "9"}) == ["t/b changed", "t/c is missing"]


# ---------------------------------------------------------------- build, resume, verify


def test_build_makes_a_verified_index_and_a_second_build_does_nothing(tmp_path: Path) -> None:
    """40 documents in chunks of 8: every row in, verified at a table version, files recorded; again: already."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"
    result = build(root, store, version, documents)
    m = result.manifest
    assert (result.encoded, result.kept_chunks, result.already) == (N_DOCS, 0, False)
    assert m.index_id == index_id("kw-model", "1", "faq") == "kw-model-v1-faq"
    assert (m.state, m.rows, m.chunks, m.chunks_done, m.attempts) == ("verified", N_DOCS, 5, 5, 1)
    assert (m.corpus_version, m.corpus_digest, m.model) == (1, version.digest, MODEL)
    assert m.table_version is not None and m.ann is None and m.error is None
    assert m.files == lance.checksums(root, m.index_id) and any("/data/" in f for f in m.files)
    assert read_manifest(root, m.index_id) == m
    stored = vectors_by_id(root, m.index_id)
    assert sorted(stored) == sorted(d.id for d in documents)
    expected = KeywordEncoder(KEYWORDS).encode([d.text for d in documents])
    assert all(np.array_equal(stored[d.id], v) for d, v in zip(documents, expected, strict=True))

    again = build(root, store, version, documents)
    assert (again.already, again.encoded, again.manifest) == (True, 0, m)


def test_a_killed_build_resumes_with_its_committed_chunks_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    """Killed after chunk 2: building, 3 chunks done; run again it keeps 3 chunks, encodes the other 16
    documents, and the vectors equal those of a build that was never interrupted."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"

    def kill_after_2(n: int) -> None:
        if n == 2:
            raise Killed

    with pytest.raises(Killed):
        build(root, store, version, documents, after_chunk=kill_after_2)
    halfway = read_manifest(root, MODEL.name + "-v1-faq")
    assert halfway is not None
    assert (halfway.state, halfway.chunks_done, halfway.chunks, halfway.attempts) == ("building", 3, 5, 1)
    with pytest.raises(VectorIndexError, match=r"is building \(3/5 chunks\)"):
        find(root, MODEL, "faq")

    seen: list[int] = []
    resumed = build(root, store, version, documents, after_chunk=seen.append)
    assert (resumed.kept_chunks, resumed.encoded, resumed.already) == (3, N_DOCS - 3 * CHUNK, False)
    assert seen == [3, 4]
    m = resumed.manifest
    assert (m.state, m.attempts, m.resumed_chunks, m.chunks_done, m.rows) == ("verified", 2, 3, 5, N_DOCS)

    other = tmp_path / "uninterrupted"
    build(other, store, version, documents)
    interrupted, straight = vectors_by_id(root, m.index_id), vectors_by_id(other, m.index_id)
    assert sorted(interrupted) == sorted(straight) == sorted(d.id for d in documents)
    assert all(np.array_equal(interrupted[i], straight[i]) for i in straight)


def test_a_corpus_edited_during_the_build_fails_it_and_find_refuses_it(tmp_path: Path) -> None:
    """The snapshot rewritten between chunks: the recheck before verifying sees it, the manifest is failed."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"

    def edit_after_1(n: int) -> None:
        if n == 1:
            rewrite_snapshot(store, version, "d05", "changed mid-build")

    with pytest.raises(VectorIndexError, match=r"the corpus changed during the build .*changed on disk"):
        build(root, store, version, documents, after_chunk=edit_after_1)
    m = read_manifest(root, "kw-model-v1-faq")
    assert m is not None and m.state == "failed" and "changed on disk" in (m.error or "")
    with pytest.raises(VectorIndexError, match="kw-model-v1-faq is failed: the corpus changed during the build"):
        find(root, MODEL, "faq")


def test_a_recheck_that_raises_fails_the_build(tmp_path: Path) -> None:
    """Any CorpusError from ``recheck`` is a failed build, not a verified one."""
    _, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"

    def gone() -> None:
        raise CorpusError("version 1 of corpus 'faq' is unreadable")

    with pytest.raises(VectorIndexError, match="failed verification: the corpus changed during the build"):
        build_index(root, MODEL, KeywordEncoder(KEYWORDS), version, documents, recheck=gone, options=OPTIONS)
    m = read_manifest(root, "kw-model-v1-faq")
    assert m is not None and (m.state, m.table_version, m.files) == ("failed", None, {})


def test_nan_vectors_fail_verification(tmp_path: Path) -> None:
    """A model that returns NaN for one text: the index is failed, naming that document."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"
    broken = KeywordEncoder(KEYWORDS, fail_on="kw7")
    with pytest.raises(VectorIndexError, match=r"NaN or infinite vector for id d07"):
        build_index(root, MODEL, broken, version, documents, recheck=lambda: store.documents(version), options=OPTIONS)
    m = read_manifest(root, "kw-model-v1-faq")
    assert m is not None and m.state == "failed"


# ---------------------------------------------------------------- search


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, list[Document]]:
    """A verified index of the 40-document corpus under ``tmp_path``: (index root, documents)."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"
    build(root, store, version, documents)
    return root, documents


def test_search_finds_each_document_by_its_own_text_best_first(built: tuple[Path, list[Document]]) -> None:
    """A document's text as the query finds that document first; hits are corpus ids, scores descending."""
    root, documents = built
    searcher = Searcher(root, find(root, MODEL, "faq"), MODEL, KeywordEncoder(KEYWORDS))
    picked = documents[::7]
    answers = searcher.search([d.text for d in picked], k=5)
    ids = {d.id for d in documents}
    for d, answer in zip(picked, answers, strict=True):
        assert (answer.query, answer.model_version, answer.index_id) == (d.text, "1", "kw-model-v1-faq")
        assert len(answer.hits) == 5 and {h.id for h in answer.hits} <= ids
        assert answer.hits[0].id == d.id and answer.hits[0].score == pytest.approx(1.0)
        scores = [h.score for h in answer.hits]
        assert scores == sorted(scores, reverse=True) and scores[1] < scores[0]


def test_above_the_threshold_an_ann_index_is_verified_and_searched_with_its_recorded_settings(tmp_path: Path) -> None:
    """With the ANN threshold at 0 the 40 rows get an IVF_HNSW_SQ index: one partition, its query settings
    (every partition probed, ef 64) in the manifest, recall@10 vs exact measured with them (40 rows: all
    found), and the Searcher answers through it with each document's own text first."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"
    options = dataclasses.replace(OPTIONS, ann_threshold=0, recall_sample=10)
    encoder = KeywordEncoder(KEYWORDS)
    m = build_index(root, MODEL, encoder, version, documents, recheck=lambda: store.documents(version), options=options)
    m = m.manifest
    assert m.state == "verified" and m.ann is not None
    assert (m.ann["type"], m.ann["num_partitions"], m.ann["nprobes"], m.ann["ef"]) == (
        "IVF_HNSW_SQ",
        1,
        1,
        lance.ANN_EF,
    )
    assert m.ann_recall_at_10 == 1.0
    answers = Searcher(root, m, MODEL, KeywordEncoder(KEYWORDS)).search([d.text for d in documents[::5]], k=3)
    assert [a.hits[0].id for a in answers] == [d.id for d in documents[::5]]


def test_search_score_is_the_cosine_similarity(built: tuple[Path, list[Document]]) -> None:
    """Query 'kw3 alpha' against d03 ('kw3 delta filler filler filler'): kw3 shared of 2 and 2 keywords: 1/2."""
    root, _ = built
    searcher = Searcher(root, find(root, MODEL, "faq"), MODEL, KeywordEncoder(KEYWORDS))
    hits = {h.id: h.score for h in searcher.search(["kw3 alpha"], k=N_DOCS)[0].hits}
    assert hits["d03"] == pytest.approx(0.5, abs=1e-6)
    assert hits["d00"] == pytest.approx(0.5, abs=1e-6)  # 'kw0 alpha': alpha shared
    assert hits["d01"] == pytest.approx(0.0, abs=1e-6)  # 'kw1 beta': nothing shared


def test_another_weights_digest_is_refused_naming_both_versions(built: tuple[Path, list[Document]]) -> None:
    """The fingerprint guard: vectors of version 2's weights never query version 1's index."""
    root, _ = built
    manifest = find(root, MODEL, "faq")
    other = dataclasses.replace(MODEL, version="2", weights_digest="c" * 64)
    with pytest.raises(VectorIndexError, match=r"built by kw-model v1 .*the model asking is kw-model v2") as info:
        Searcher(root, manifest, other, KeywordEncoder(KEYWORDS))
    assert "a" * 12 in str(info.value) and "c" * 12 in str(info.value)
    same_label = dataclasses.replace(MODEL, weights_digest="d" * 64)
    with pytest.raises(VectorIndexError, match=rf"the model asking is kw-model v1 \(weights {'d' * 12}\)"):
        Searcher(root, manifest, same_label, KeywordEncoder(KEYWORDS))
    with pytest.raises(VectorIndexError, match=r"kw-model v2 has no index of corpus 'faq'.*kw-model-v1-faq"):
        find(root, other, "faq")


@pytest.mark.parametrize("how", ["overwrite", "append", "delete"])
def test_a_table_file_changed_after_verification_is_refused(built: tuple[Path, list[Document]], how: str) -> None:
    """One data file of the table edited, grown or removed: searching says the index is not as verified."""
    root, _ = built
    manifest = find(root, MODEL, "faq")
    data = sorted((root / f"{manifest.index_id}.lance" / "data").iterdir())
    assert data
    target = data[0]
    if how == "overwrite":
        raw = bytearray(target.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        target.write_bytes(bytes(raw))
    elif how == "append":
        with open(target, "ab") as fh:
            fh.write(b"\0")
    else:
        target.unlink()
    problem = "is missing" if how == "delete" else "changed"
    with pytest.raises(VectorIndexError, match=rf"kw-model-v1-faq is not as verified: .*{problem}"):
        Searcher(root, manifest, MODEL, KeywordEncoder(KEYWORDS))


# ---------------------------------------------------------------- inventory


def version_at(version: int, first_event: str) -> CorpusVersion:
    return CorpusVersion("kb", version, "d", 1, first_event, "s", 0, 0, 0, first_event, first_event)


def test_freshness_lag_is_the_age_of_the_oldest_change_the_index_lacks() -> None:
    """Index at v1, v2's oldest change 09:30, v3's 09:50, now 10:00: 30 minutes; at v2: 10 minutes; at v3: 0."""
    now = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    versions = [
        version_at(1, "2026-12-01T08:00:00+00:00"),
        version_at(2, "2026-12-01T09:30:00+00:00"),
        version_at(3, "2026-12-01T09:50:00Z"),
    ]
    assert freshness_lag(1, versions, now) == 1800.0
    assert freshness_lag(2, versions, now) == 600.0
    assert freshness_lag(3, versions, now) == 0.0
    assert freshness_lag(1, versions, dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)) == 0.0  # never negative


def test_inventory_lists_each_index_with_its_lag_behind_the_latest_corpus_version(tmp_path: Path) -> None:
    """An index of v1, then a change at 09:30: one row, one version behind, 30 minutes stale at 10:00."""
    store, version, documents = new_corpus(tmp_path)
    root = tmp_path / "indexes"
    build(root, store, version, documents)
    store.update("faq", [Change("upsert", "d01", "kw1 rewritten", "2026-12-01T09:30:00+00:00")], source="ch")
    now = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)

    found = inventory(root, store, now=now)
    assert found.root == str(root)
    [row] = found.indexes
    assert (row.index_id, row.model, row.version, row.corpus) == ("kw-model-v1-faq", "kw-model", "1", "faq")
    assert (row.corpus_version, row.latest_corpus_version, row.state) == (1, 2, "verified")
    assert (row.rows, row.chunks_done, row.chunks, row.ann) == (N_DOCS, 5, 5, "exact")
    assert (row.freshness_lag_s, row.error) == (1800.0, None)
    assert found.to_dict()["indexes"][0]["freshness_lag_s"] == 1800.0
    assert inventory(root, store, model="another", now=now).indexes == []
    unknown = inventory(root, CorpusStore(tmp_path / "empty"), now=now).indexes[0]
    assert (unknown.latest_corpus_version, unknown.freshness_lag_s) == (None, None)


# ---------------------------------------------------------------- sync and gc


def updated_corpus(tmp_path: Path) -> tuple[CorpusStore, CorpusVersion, CorpusVersion, list[Document], list[Document]]:
    """Version 1 (40 docs) and version 2: d00 deleted, d01 changed, d40 added."""
    store, v1, old = new_corpus(tmp_path)
    changes = write_jsonl(
        tmp_path / "changes.jsonl",
        [
            {"op": "delete", "_id": "d00", "ts": "2026-12-01T09:00:00Z"},
            {"_id": "d01", "title": "kw1", "text": "gamma gamma", "ts": "2026-12-01T09:01:00Z"},
            {"_id": "d40", "title": "kw0", "text": "beta", "ts": "2026-12-01T09:02:00Z"},
        ],
    )
    v2 = store.update("faq", read_changes(changes), source=str(changes))
    return store, v1, v2, old, store.documents(v2)


def test_sync_encodes_only_what_changed_and_swaps_in_the_new_corpus_version(tmp_path: Path) -> None:
    """Two new or changed texts encoded, one deleted; the manifest moves to v2 with the lag it closed."""
    from indexing.sync import sync_index

    store, v1, v2, old, new = updated_corpus(tmp_path)
    root = tmp_path / "indexes"
    manifest = build(root, store, v1, old).manifest
    encoder = KeywordEncoder(KEYWORDS)
    synced, result = sync_index(
        root, manifest, MODEL, encoder, v2, store.versions("faq"), old, new, recheck=lambda: store.documents(v2)
    )
    assert (result.upserts, result.deletes, result.rows) == (2, 1, N_DOCS)
    assert (synced.corpus_version, synced.corpus_digest, synced.rows, synced.state) == (
        2,
        v2.digest,
        N_DOCS,
        "verified",
    )
    assert result.lag_before_s > 0 and synced.syncs[-1]["to_version"] == 2
    assert synced.table_version is not None and synced.table_version > manifest.table_version
    stored = vectors_by_id(root, synced.index_id)
    assert sorted(stored) == sorted(d.id for d in new)
    assert np.array_equal(stored["d01"], encoder.encode(["kw1 gamma gamma"])[0])
    hits = Searcher(root, synced, MODEL, encoder).search(["kw0 beta"], k=1)[0].hits
    assert hits[0].id == "d40"  # d00 (kw0 too) is gone


def test_a_failed_sync_leaves_the_verified_index_serving(tmp_path: Path) -> None:
    """A sync that dies after deleting rows (here: the corpus changed under it) is undone: the table's head
    is the verified version again and the manifest, files and answers are as before."""
    from indexing.sync import sync_index

    store, v1, v2, old, new = updated_corpus(tmp_path)
    root = tmp_path / "indexes"
    manifest = build(root, store, v1, old).manifest

    def changed() -> None:
        raise CorpusError("version 2 of corpus 'faq' changed on disk")

    with pytest.raises(VectorIndexError, match="the corpus changed during the sync"):
        sync_index(
            root, manifest, MODEL, KeywordEncoder(KEYWORDS), v2, store.versions("faq"), old, new, recheck=changed
        )
    assert read_manifest(root, manifest.index_id) == manifest
    head = lance.open_table(root, manifest.index_id)
    assert sorted(lance.id_chunks(head)[0]) == sorted(d.id for d in old)
    searcher = Searcher(root, manifest, MODEL, KeywordEncoder(KEYWORDS))  # files as verified, still
    assert searcher.search(["kw0 alpha"], k=1)[0].hits[0].id == "d00"


def test_gc_keeps_recent_aliased_and_unjudged_versions() -> None:
    """Production went 1 -> 2 -> 3 -> 4 -> 3 (a rollback); previous is 2; 6 is a candidate being built."""
    from indexing.inventory import removable_versions

    moves = ["1", "2", "3", "4", "3"]
    indexed = {"1", "2", "3", "4", "5", "6"}
    # keep 1: 3 (latest production); aliases 3 and 2; 5 and 6 never served but are newer than 4: kept.
    assert removable_versions(indexed, moves, {"3", "2"}, keep=1) == {"1", "4"}
    assert removable_versions(indexed, moves, {"3", "2"}, keep=2) == {"1"}  # 3, 4
    assert removable_versions(indexed, moves, {"3"}, keep=3) == {"1"}  # 3, 4, 2
    assert removable_versions({"1"}, [], set(), keep=1) == set()  # nothing ever served: nothing judged


# ---------------------------------------------------------------- the Ray engine's pieces that need no cluster


def test_a_ray_actor_refuses_weights_other_than_the_build_s() -> None:
    """An actor whose loader returns another weights digest raises before encoding anything; one with
    the build's digest encodes a chunk into the bytes the driver reshapes."""
    from indexing.ray_engine import ChunkActor

    encoder = KeywordEncoder(KEYWORDS)
    with pytest.raises(VectorIndexError, match="loaded weights cccccccccccc, not the aaaaaaaaaaaa this build"):
        ChunkActor(lambda: (encoder, "c" * 64), MODEL.weights_digest, 32, "fp32")
    actor = ChunkActor(lambda: (encoder, MODEL.weights_digest), MODEL.weights_digest, 32, "fp32")
    texts = ["kw1 alpha", "kw2 beta filler"]
    out = actor({"chunk": np.array([7]), "texts": np.array([np.array(texts, dtype=object)], dtype=object)})
    assert (out["chunk"].tolist(), out["rows"].tolist()) == ([7], [2])
    back = np.frombuffer(out["vectors"][0], dtype=np.float32).reshape(2, len(KEYWORDS))
    assert np.array_equal(back, encoder.encode(texts))


def test_the_embedops_error_under_ray_s_wrappers_is_the_one_raised() -> None:
    """Ray wraps a worker's exception (``cause``, ``__cause__``); the build reports the embedops error inside."""
    from indexing.ray_engine import embedops_cause

    inner = VectorIndexError("a Ray worker loaded weights x")

    class RayTaskError(Exception):
        def __init__(self, cause: BaseException) -> None:
            super().__init__("ray wrapper")
            self.cause = cause

    wrapped = RuntimeError("streaming executor failed")
    wrapped.__cause__ = RayTaskError(inner)
    assert embedops_cause(wrapped) is inner
    assert embedops_cause(RuntimeError("plain")) is None
