"""A corpus as plain values: documents read from a file, changes applied, a digest that pins a version.

Pure functions over lists and dicts; reading and writing versions on disk is ``corpus_store``'s.
A corpus file is BEIR's ``corpus.jsonl`` (``_id``, ``title``, ``text``: the text is title, a space,
body) or any JSONL, CSV or Parquet file with an id field and one or more text fields. A change file
is JSONL or CSV/Parquet with ``op`` (``upsert``, the default, or ``delete``), the id, the text fields
(for an upsert) and ``ts``, the change's event time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from embedops.core.errors import CorpusError, DataError
from embedops.core.records import read_records
from embedops.core.text import check_text
from embedops.core.times import parse_iso

ID_FIELDS = ("_id", "id")  # tried in order when --id-field is not given (BEIR's first)
TEXT_FIELDS = ("title", "text")  # joined with a space, those present, when --text-field is not given
Op = Literal["upsert", "delete"]


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    updated_at: str  # ISO time of the event that last set this text


@dataclass(frozen=True)
class Change:
    op: Op
    id: str
    text: str  # "" for a delete
    ts: str  # ISO event time


def corpus_file(path: Path) -> Path:
    """A BEIR folder stands for its corpus.jsonl."""
    if path.is_dir():
        if not (path / "corpus.jsonl").is_file():
            raise CorpusError("a folder given as a corpus must hold corpus.jsonl (BEIR layout)", path=str(path))
        return path / "corpus.jsonl"
    if not path.is_file():
        raise CorpusError("file not found", path=str(path))
    return path


def pick_fields(
    found: Sequence[str], id_field: str | None, text_fields: Sequence[str], path: Path
) -> tuple[str, tuple[str, ...]]:
    """The id field and text fields to read, from the flags or, without them, from the first record's fields."""
    shown = ", ".join(found) or "none"
    if id_field is None:
        id_field = next((f for f in ID_FIELDS if f in found), None)
        if id_field is None:
            raise CorpusError(
                f"no id field (looked for {', '.join(ID_FIELDS)}; found {shown}): pass --id-field", path=str(path)
            )
    elif id_field not in found:
        raise CorpusError(f"no field '{id_field}' (found {shown})", path=str(path))
    fields = tuple(text_fields) or tuple(f for f in TEXT_FIELDS if f in found)
    missing = [f for f in fields if f not in found]
    if not fields or missing:
        wanted = ", ".join(missing or TEXT_FIELDS)
        raise CorpusError(f"no text field {wanted} (found {shown}): pass --text-field", path=str(path))
    return id_field, fields


def _id(record: dict[str, Any], field: str, path: Path, row: int) -> str:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise CorpusError("missing or empty id", path=str(path), row=row, field=field)
    return check_text(str(value).strip(), path=str(path), row=row, field=field, error=CorpusError)


def _text(record: dict[str, Any], fields: Sequence[str], path: Path, row: int) -> str:
    parts = []
    for field in fields:
        value = record.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise CorpusError(f"expected text, got {type(value).__name__}", path=str(path), row=row, field=field)
        parts.append(check_text(value, path=str(path), row=row, field=field, error=CorpusError).strip())
    text = " ".join(p for p in parts if p)
    if not text:
        raise CorpusError("no text", path=str(path), row=row, field=fields[-1])
    return text


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The file's rows; a file that cannot be read as rows (not UTF-8, not JSON, ...) is a ``CorpusError``."""
    try:
        yield from read_records(path)
    except CorpusError:
        raise
    except DataError as exc:
        raise CorpusError(str(exc)) from None


def read_documents(
    path: Path, *, at: str, id_field: str | None = None, text_fields: Sequence[str] = ()
) -> list[Document]:
    """Every document of a corpus file, validated: a duplicate id, an empty id or text, or text that is
    not UTF-8 is a ``CorpusError`` naming the file, row and field, before anything is stored."""
    path = corpus_file(path)
    documents: list[Document] = []
    first_row: dict[str, int] = {}
    fields: tuple[str, tuple[str, ...]] | None = None
    for row, record in records(path):
        if fields is None:
            fields = pick_fields(list(record), id_field, text_fields, path)
        doc_id = _id(record, fields[0], path, row)
        if doc_id in first_row:
            raise CorpusError(f"duplicate id '{doc_id}' (first at row {first_row[doc_id]})", path=str(path), row=row)
        first_row[doc_id] = row
        documents.append(Document(doc_id, _text(record, fields[1], path, row), at))
    if not documents:
        raise CorpusError("the corpus file has no rows", path=str(path))
    return documents


def read_changes(path: Path, *, id_field: str | None = None, text_fields: Sequence[str] = ()) -> list[Change]:
    """Every change of a change file, validated like a corpus file; each needs ``ts``, an ISO event time."""
    path = corpus_file(path)
    changes: list[Change] = []
    fields: tuple[str, tuple[str, ...]] | None = None  # from the first upsert: a delete carries no text
    for row, record in records(path):
        given = record.get("op") or "upsert"
        if given not in ("upsert", "delete"):
            raise CorpusError(f"op '{given}' is not upsert or delete", path=str(path), row=row, field="op")
        op: Op = "delete" if given == "delete" else "upsert"
        if op == "upsert" and fields is None:
            fields = pick_fields(list(record), id_field, text_fields, path)
        ids = fields[0] if fields else pick_fields([*record, "text"], id_field, ("text",), path)[0]
        try:
            ts = parse_iso(str(record["ts"])).astimezone(dt.UTC).isoformat()
        except (KeyError, ValueError):
            raise CorpusError(
                "missing or not an ISO time (each change needs its event time, e.g. 2026-12-01T09:30:00Z)",
                path=str(path),
                row=row,
                field="ts",
            ) from None
        text = _text(record, fields[1], path, row) if op == "upsert" and fields else ""
        changes.append(Change(op, _id(record, ids, path, row), text, ts))
    if not changes:
        raise CorpusError("the change file has no rows", path=str(path))
    return changes


def apply_changes(documents: Iterable[Document], changes: Iterable[Change], *, path: str) -> list[Document]:
    """The documents after the changes, in order (a change file may touch an id more than once: the
    later row wins). Deleting an id the corpus does not have is an error: it is usually a wrong id."""
    current = {d.id: d for d in documents}
    for row, change in enumerate(changes, start=1):
        if change.op == "delete":
            if current.pop(change.id, None) is None:
                raise CorpusError(f"delete of id '{change.id}', which the corpus does not have", path=path, row=row)
        else:
            current[change.id] = Document(change.id, change.text, change.ts)
    if not current:
        raise CorpusError("the changes would delete every document; a corpus cannot be empty", path=path)
    return list(current.values())


def corpus_digest(documents: Iterable[Document]) -> str:
    """sha256 over (id, text) in id order: two versions with the same documents have the same digest."""
    h = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.id):
        h.update(doc.id.encode() + b"\0" + doc.text.encode() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Delta:
    """What an index at one corpus version must do to reach another."""

    upserts: list[Document]  # new or changed text: encode these
    deletes: list[str]  # ids gone

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)


def delta(old: Iterable[Document], new: Iterable[Document]) -> Delta:
    before = {d.id: d.text for d in old}
    after = list(new)
    upserts = [d for d in after if before.get(d.id) != d.text]
    kept = {d.id for d in after}
    return Delta(upserts, sorted(i for i in before if i not in kept))


def now_iso() -> str:
    """The event time of documents added without one: now, in UTC."""
    return dt.datetime.now(dt.UTC).isoformat()
