"""Table files of records: JSONL, CSV or Parquet (optionally gzipped), read with errors that say where.

Training data and corpora are both "a file of rows with named fields"; each format has one reader
here, and each reader yields (1-based row or line number, record) so a problem names its place.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embedops.core.errors import DataError
from embedops.core.files import jsonl_objects

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


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


def _records_csv(path: Path, gz: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    text = _decode(_read_bytes(path, gz), path).lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for record in reader:
            if None in record:
                raise DataError("more fields than the header has", path=str(path), row=reader.line_num)
            yield reader.line_num, record
    except csv.Error as exc:
        raise DataError(f"malformed CSV ({exc})", path=str(path), row=reader.line_num) from None


def _records_parquet(path: Path, gz: bool) -> Iterator[tuple[int, dict[str, Any]]]:
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


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row, record) of every row of a JSONL, CSV or Parquet file (by its name, ``.gz`` allowed)."""
    fmt, gz = detect_format(path)
    return READERS[fmt](path, gz)
