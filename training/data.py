"""Training data: pairs or triplets from JSONL, CSV, Parquet or a BEIR folder, validated up front.

Validation runs before any model is loaded, so a bad file costs a second, not a model load.
Each problem is a ``DataError`` naming the file, the row (1-based line or row number) and the
field. Empty texts and exact duplicate rows are dropped and counted rather than fatal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedops.core.errors import DataError
from embedops.core.records import read_records
from embedops.core.text import check_text
from evaluation.golden import load_golden_set

if TYPE_CHECKING:
    import datasets

REQUIRED = ("anchor", "positive")
OPTIONAL = ("negative",)


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
        records, source = list(read_records(path)), str(path)
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
