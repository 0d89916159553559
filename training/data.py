"""Training data: pairs or triplets from JSONL, CSV, Parquet or a BEIR folder, validated up front.

Validation runs before any model is loaded, so a bad file costs a second, not a model load.
Each problem is a ``DataError`` naming the file, the row (1-based line or row number) and the
field. Empty texts and exact duplicate rows are dropped and counted rather than fatal.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedops.core.errors import DataError
from embedops.core.files import jsonl_objects
from embedops.core.text import check_text
from evaluation.golden import load_golden_set

if TYPE_CHECKING:
    import datasets

REQUIRED = ("anchor", "positive")
OPTIONAL = ("negative",)
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class TrainingData:
    rows: list[tuple[str, ...]]
    columns: tuple[str, ...]
    source: str
    digest: str
    dropped_empty: int
    dropped_duplicates: int
    ignored_columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    def to_dataset(self) -> datasets.Dataset:
        import datasets

        return datasets.Dataset.from_dict({col: [row[i] for row in self.rows] for i, col in enumerate(self.columns)})

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(self.columns))


def detect_format(path: Path) -> tuple[str, bool]:
    """(format, gzipped) from the file name, e.g. ``pairs.jsonl.gz`` -> ("jsonl", True)."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if ext not in FORMATS:
        raise DataError(
            f"unsupported file type '{''.join(path.suffixes) or '(none)'}': use .jsonl, .csv "
            "or .parquet (optionally .gz), or a BEIR folder",
            path=str(path),
        )
    return FORMATS[ext], gz


def _read_bytes(path: Path, gz: bool) -> bytes:
    try:
        if gz:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"truncated or corrupt gzip file ({exc})", path=str(path)) from None


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8", path=str(path), row=line
        ) from None


def _records_jsonl(path: Path, gz: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    return jsonl_objects(io.BytesIO(_read_bytes(path, gz)), path=path)


def _records_csv(path: Path, gz: bool) -> Iterator[tuple[int, dict]]:
    text = _decode(_read_bytes(path, gz), path).lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for record in reader:
            if None in record:
                raise DataError("more fields than the header has", path=str(path), row=reader.line_num)
            yield reader.line_num, record
    except csv.Error as exc:
        raise DataError(f"malformed CSV ({exc})", path=str(path), row=reader.line_num) from None


def _records_parquet(path: Path, gz: bool) -> Iterator[tuple[int, dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if gz:
        raise DataError("gzipped Parquet is not supported (Parquet compresses internally)", path=str(path))
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file ({exc})", path=str(path)) from None
    try:
        rows = table.to_pylist()
    except UnicodeDecodeError:
        # Arrow does not validate string columns on read; Python's decode does, one row at a time.
        row, field = _first_undecodable(table)
        raise DataError(
            "not UTF-8 text; write the column as UTF-8 strings", path=str(path), row=row, field=field
        ) from None
    yield from enumerate(rows, start=1)


def _first_undecodable(table: Any) -> tuple[int | None, str | None]:
    """(1-based row, column) of the first value that is not UTF-8; only called once a decode failed."""
    for name in table.column_names:
        for row, value in enumerate(table.column(name), start=1):
            try:
                value.as_py()
            except UnicodeDecodeError:
                return row, name
    return None, None


READERS = {"jsonl": _records_jsonl, "csv": _records_csv, "parquet": _records_parquet}


def _beir_rows(folder: Path, split: str) -> tuple[list[tuple[int, dict]], str]:
    golden = load_golden_set(folder, split)
    corpus = dict(zip(golden.corpus_ids, golden.corpus_texts, strict=True))
    records = [
        (n, {"anchor": text, "positive": corpus[doc]})
        for n, (q_id, text) in enumerate(zip(golden.query_ids, golden.query_texts, strict=True), start=1)
        for doc, grade in golden.qrels[q_id].items()
        if grade > 0
    ]
    return records, f"{folder}#{split}"


def load_training_data(path: str | Path, *, split: str = "train", min_rows: int = 1) -> TrainingData:
    """Read and validate ``path``; ``min_rows`` is the batch size (fewer rows cannot fill one)."""
    path = Path(path).expanduser()
    if path.is_dir():
        records, source = _beir_rows(path, split)
    elif path.is_file():
        fmt, gz = detect_format(path)
        records, source = list(READERS[fmt](path, gz)), str(path)
    else:
        raise DataError("file or folder not found", path=str(path))
    if not records:
        raise DataError("the file has no rows", path=str(path))

    found = list(records[0][1].keys())
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(repr(c) for c in missing)} (found: "
            f"{', '.join(map(str, found)) or 'none'}); name the columns anchor, positive"
            " and optionally negative",
            path=str(path),
        )
    columns = (*REQUIRED, *(c for c in OPTIONAL if c in found))
    ignored = tuple(str(c) for c in found if c not in columns)

    rows: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    dropped_empty = dropped_dupes = 0
    for lineno, record in records:
        values = []
        for col in columns:
            if col not in record:
                raise DataError("missing", path=str(path), row=lineno, field=col)
            value = record[col]
            if value is not None and not isinstance(value, str):
                raise DataError(f"expected text, got {type(value).__name__}", path=str(path), row=lineno, field=col)
            if value:
                check_text(value, path=str(path), row=lineno, field=col)
            values.append(value.strip() if value else "")
        if not all(values):
            dropped_empty += 1
            continue
        row = tuple(values)
        if row in seen:
            dropped_dupes += 1
            continue
        seen.add(row)
        rows.append(row)

    if not rows:
        raise DataError(f"no usable rows: all {len(records)} rows have an empty text", path=str(path))
    if len(rows) < min_rows:
        raise DataError(
            f"{len(rows)} usable rows, fewer than one batch of {min_rows}: add data or lower --batch-size",
            path=str(path),
        )
    return TrainingData(
        rows=rows,
        columns=columns,
        source=source,
        digest=rows_digest(columns, rows),
        dropped_empty=dropped_empty,
        dropped_duplicates=dropped_dupes,
        ignored_columns=ignored,
    )


def rows_digest(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """sha256 over the cleaned rows in order: the data a run actually trained on."""
    h = hashlib.sha256(json.dumps(columns).encode() + b"\n")
    for row in rows:
        h.update(json.dumps(row, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()
