"""Golden sets in BEIR layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedops.core.errors import GoldenSetError
from embedops.core.files import read_jsonl
from embedops.core.text import check_text

# The split every comparison is made on unless a command, config or policy names another: the gate's.
DEFAULT_SPLIT = "test"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GoldenSet:
    """The part of a BEIR folder one split needs, in file order, plus a digest that pins it."""

    path: Path
    split: str
    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: graded relevance}
    digest: str
    skipped_qrels: int = 0
    drop_self_matches: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)


def document_text(title: str, text: str) -> str:
    """BEIR's convention, used by MTEB too: the title, a space, the body."""
    return f"{title} {text}".strip() if title else text.strip()


def _string(obj: dict[str, Any], key: str, path: Path, lineno: int, *, required: bool = True) -> str:
    value = obj.get(key, "" if not required else None)
    if value is None or (required and key not in obj):
        raise GoldenSetError("missing", path=str(path), row=lineno, field=key)
    if isinstance(value, int | float) and not isinstance(value, bool) and key == "_id":
        value = str(value)
    if not isinstance(value, str):
        raise GoldenSetError(f"expected a string, got {type(value).__name__}", path=str(path), row=lineno, field=key)
    return check_text(value, path=str(path), row=lineno, field=key, error=GoldenSetError)


def _relevance(text: str, path: Path, lineno: int) -> int:
    """A graded relevance judgment: a whole number ("1" or "1.0"); "inf", "nan" or "0.5" are refused."""
    try:
        value = float(text)
    except ValueError:
        raise GoldenSetError(f"score '{text}' is not a number", path=str(path), row=lineno, field="score") from None
    if not math.isfinite(value) or value != int(value):
        raise GoldenSetError(
            f"score '{text}' is not a whole number (relevance grades are 0, 1, 2, ...)",
            path=str(path),
            row=lineno,
            field="score",
        )
    return int(value)


def _read_qrels(path: Path) -> list[tuple[int, str, str, int]]:
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.tsv")) if path.parent.is_dir() else []
        hint = f" (available splits: {', '.join(available)})" if available else ""
        raise GoldenSetError(f"split file not found{hint}", path=str(path))
    rows = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise GoldenSetError("not UTF-8 text", path=str(path), row=lineno) from None
            if not line.strip():
                continue
            parts = line.split("\t")
            if lineno == 1 and parts[0].strip().lower() in {"query-id", "query_id", "qid"}:
                continue
            if len(parts) == 4:  # TREC format: qid, iteration, docid, relevance
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3:
                raise GoldenSetError("expected 'query-id<TAB>corpus-id<TAB>score'", path=str(path), row=lineno)
            score = _relevance(parts[2], path, lineno)
            rows.append((lineno, parts[0].strip(), parts[1].strip(), score))
    return rows


def load_golden_set(
    path: str | Path, split: str = DEFAULT_SPLIT, *, strict: bool = False, drop_self_matches: bool = False
) -> GoldenSet:
    """Load one split of a BEIR folder.

    Qrels that name unknown query or document ids are skipped and counted (an error with
    ``strict``). Only queries with at least one positive judgment are kept, as BEIR does.
    ``drop_self_matches`` is recorded for retrieval (ArguAna-style sets, where a query is also
    a document and must not retrieve itself).
    """
    root = Path(path)
    if not root.is_dir():
        raise GoldenSetError(
            "golden set folder not found (expected corpus.jsonl, queries.jsonl, qrels/)", path=str(root)
        )
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_rows = _read_qrels(root / "qrels" / f"{split}.tsv")

    corpus: dict[str, str] = {}
    for lineno, obj in read_jsonl(corpus_path, error=GoldenSetError):
        doc_id = _string(obj, "_id", corpus_path, lineno)
        if doc_id in corpus:
            raise GoldenSetError(f"duplicate document id '{doc_id}'", path=str(corpus_path), row=lineno)
        corpus[doc_id] = document_text(
            _string(obj, "title", corpus_path, lineno, required=False), _string(obj, "text", corpus_path, lineno)
        )
    if not corpus:
        raise GoldenSetError("corpus is empty", path=str(corpus_path))

    queries: dict[str, str] = {}
    for lineno, obj in read_jsonl(queries_path, error=GoldenSetError):
        q_id = _string(obj, "_id", queries_path, lineno)
        if q_id in queries:
            raise GoldenSetError(f"duplicate query id '{q_id}'", path=str(queries_path), row=lineno)
        queries[q_id] = _string(obj, "text", queries_path, lineno)

    qrels: dict[str, dict[str, int]] = {}
    unknown: list[str] = []
    for lineno, q_id, doc_id, score in qrels_rows:
        if q_id not in queries or doc_id not in corpus:
            unknown.append(
                f"row {lineno}: {'query' if q_id not in queries else 'document'} "
                f"'{q_id if q_id not in queries else doc_id}'"
            )
            continue
        qrels.setdefault(q_id, {})[doc_id] = score
    warnings: list[str] = []
    qrels_path = root / "qrels" / f"{split}.tsv"
    if unknown:
        message = f"{len(unknown)} qrels name unknown ids and were skipped (first: {unknown[0]})"
        if strict:
            raise GoldenSetError(message, path=str(qrels_path))
        warnings.append(message)
        log.warning("%s: %s", qrels_path, message)

    kept = [q for q in queries if any(s > 0 for s in qrels.get(q, {}).values())]
    empty = [q for q in kept if not queries[q].strip()]
    if empty:
        raise GoldenSetError(
            f"{len(empty)} judged queries have empty text (first: '{empty[0]}')", path=str(queries_path)
        )
    if not kept:
        raise GoldenSetError(f"no query of split '{split}' has a relevant document", path=str(qrels_path))
    qrels = {q: qrels[q] for q in kept}

    corpus_ids = list(corpus)
    return GoldenSet(
        path=root,
        split=split,
        corpus_ids=corpus_ids,
        corpus_texts=[corpus[d] for d in corpus_ids],
        query_ids=kept,
        query_texts=[queries[q] for q in kept],
        qrels=qrels,
        digest=golden_digest(corpus, {q: queries[q] for q in kept}, qrels, drop_self_matches),
        skipped_qrels=len(unknown),
        drop_self_matches=drop_self_matches,
        warnings=warnings,
    )


def golden_digest(
    corpus: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]], drop_self_matches: bool = False
) -> str:
    """sha256 over the normalized content: the same judgments give the same digest whatever the
    file order, whitespace or key order, and any change to a text or a grade changes it."""
    h = hashlib.sha256()
    for section, items in (("corpus", corpus), ("queries", queries)):
        h.update(f"[{section}]\n".encode())
        for key in sorted(items):
            h.update(json.dumps([key, items[key]], ensure_ascii=False).encode() + b"\n")
    h.update(b"[qrels]\n")
    for q in sorted(qrels):
        h.update(json.dumps([q, sorted(qrels[q].items())]).encode() + b"\n")
    h.update(b"[options]\n" + json.dumps({"drop_self_matches": drop_self_matches}).encode())
    return h.hexdigest()
