"""Training data loading: every format, and every bad input as a typed error naming file/row/field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from embedops.core.errors import DataError
from tests.conftest import HELPCENTER
from training.data import load_training_data

ROWS = [{"anchor": f"question {i}", "positive": f"answer {i}"} for i in range(6)]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_csv_parquet_and_gzip_give_the_same_rows_and_digest(tmp_path: Path) -> None:
    a = load_training_data(jsonl(tmp_path / "p.jsonl", ROWS))
    pd.DataFrame(ROWS).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame(ROWS).to_parquet(tmp_path / "p.parquet")
    with gzip.open(tmp_path / "p.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in ROWS)
    for name in ("p.csv", "p.parquet", "p.jsonl.gz"):
        other = load_training_data(tmp_path / name)
        assert other.rows == a.rows and other.digest == a.digest, name
    assert a.columns == ("anchor", "positive") and len(a) == 6


def test_triplets_keep_the_negative_column(tmp_path: Path) -> None:
    rows = [r | {"negative": f"other {i}"} for i, r in enumerate(ROWS)]
    data = load_training_data(jsonl(tmp_path / "t.jsonl", rows))
    assert data.columns == ("anchor", "positive", "negative")
    assert data.to_dataset().column_names == ["anchor", "positive", "negative"]


def test_empty_texts_and_duplicates_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = [*ROWS, {"anchor": "  ", "positive": "x"}, {"anchor": "q", "positive": None}, ROWS[0], ROWS[1]]
    data = load_training_data(jsonl(tmp_path / "p.jsonl", rows))
    assert (len(data), data.dropped_empty, data.dropped_duplicates) == (6, 2, 2)


def test_extra_columns_are_ignored_and_reported(tmp_path: Path) -> None:
    data = load_training_data(jsonl(tmp_path / "p.jsonl", [r | {"id": 1} for r in ROWS]))
    assert data.ignored_columns == ("id",) and data.columns == ("anchor", "positive")


def test_beir_folder_becomes_query_document_pairs() -> None:
    data = load_training_data(HELPCENTER, split="train")
    assert len(data) == 195
    assert data.rows[0][1].startswith("Setting up Quickslip Open Settings")


def test_bad_inputs(tmp_path: Path) -> None:
    cases: list[tuple[Path, str, dict]] = []

    def case(name: str, content: bytes, message: str, **kwargs: object) -> None:
        path = tmp_path / name
        path.write_bytes(content)
        cases.append((path, message, kwargs))

    good = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    case(
        "misnamed.jsonl",
        b'{"question": "a", "answer": "b"}\n',
        r"missing column\(s\) 'anchor', 'positive' \(found: question, answer\)",
    )
    case("half.jsonl", b'{"anchor": "a", "positive": "b"}\n{"anchor": "c"}\n', "row 2, field 'positive': missing")
    case("empty.jsonl", b"", "the file has no rows")
    case("blank.jsonl", b"\n\n  \n", "the file has no rows")
    case("allempty.jsonl", b'{"anchor": " ", "positive": "b"}\n', "no usable rows")
    case(
        "latin1.jsonl",
        good + '{"anchor": "café", "positive": "x"}\n'.encode("latin-1"),
        r"row 7: not UTF-8 text \(byte 0xe9\)",
    )
    case("latin1.csv", b"anchor,positive\na,b\ncaf\xe9,x\n", "row 3: not UTF-8")
    case("badjson.jsonl", good + b'{"anchor": "a", "positive": \n', "row 7: not valid JSON")
    case("number.jsonl", b'{"anchor": 5, "positive": "b"}\n', "row 1, field 'anchor': expected text, got int")
    case("few.jsonl", good, "6 usable rows, fewer than one batch of 32", min_rows=32)
    case("trunc.jsonl.gz", gzip.compress(good * 50)[:-40], "truncated or corrupt gzip")
    case("notgzip.jsonl.gz", good, "truncated or corrupt gzip")
    case("data.txt", good, "unsupported file type '.txt'")
    case("wide.csv", b"anchor,positive\na,b,c\n", "row 2: more fields than the header has")
    case("junk.parquet", b"PAR1 not really", "not a readable Parquet file")
    for path, message, kwargs in cases:
        with pytest.raises(DataError, match=message) as info:
            load_training_data(path, **kwargs)
        assert str(path) in str(info.value), path.name


@pytest.mark.parametrize("name", ["p.jsonl", "p.csv", "p.parquet"])
def test_invalid_unicode_names_the_file_row_and_field(tmp_path: Path, name: str) -> None:
    """A JSON "\\ud800" escape (a lone surrogate) once loaded and crashed the tokenizer; invalid UTF-8
    that Arrow stores without checking once escaped as a UnicodeDecodeError."""
    path = tmp_path / name
    if name == "p.jsonl":
        # json.dumps writes the lone surrogate as the escape "\ud800", as a broken exporter would.
        jsonl(path, [*ROWS[:2], {"anchor": "\ud800 x", "positive": "fine"}])
        expected = r"row 3, field 'anchor': invalid Unicode: lone surrogate U\+D800 at character 1"
    elif name == "p.csv":
        path.write_bytes(b"anchor,positive\na,b\nc,\xed\xa0\x80 x\n")  # a surrogate encoded as UTF-8 bytes
        expected = "row 3: not UTF-8 text"
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        bad = pa.array([b"a", b"b", b"\xff"], type=pa.binary()).view(pa.string())
        pq.write_table(pa.table({"anchor": pa.array(["x", "y", "z"]), "positive": bad}), path)
        expected = "row 3, field 'positive': not UTF-8 text"
    with pytest.raises(DataError, match=expected) as info:
        load_training_data(path)
    assert str(path) in str(info.value)


def test_invalid_unicode_in_a_beir_folder_is_refused(tmp_path: Path) -> None:
    from embedops.core.errors import GoldenSetError
    from tests.unit.test_golden_and_retrieval import CORPUS, QRELS, QUERIES, make_beir

    root = make_beir(
        tmp_path / "beir", CORPUS, [*QUERIES[:3], {"_id": "q4", "text": "broken \udfff"}], QRELS, split="train"
    )
    with pytest.raises(GoldenSetError, match=r"row 4, field 'text': invalid Unicode: lone surrogate U\+DFFF") as info:
        load_training_data(root)
    assert str(root / "queries.jsonl") in str(info.value)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file or folder not found"):
        load_training_data(tmp_path / "nope.jsonl")
