"""What indexes exist and how fresh each is, from the manifests and the corpus versions alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedops.core.times import parse_iso
from indexing.corpus_store import CorpusStore, CorpusVersion
from indexing.manifest import IndexManifest, all_manifests


def freshness_lag(at_version: int, versions: Sequence[CorpusVersion], now: dt.datetime) -> float:
    """Seconds since the event time of the oldest change the index does not have yet; 0 when it has all."""
    missing = [parse_iso(v.first_event) for v in versions if v.version > at_version]
    return max(0.0, (now - min(missing)).total_seconds()) if missing else 0.0


@dataclass(frozen=True)
class IndexRow:
    index_id: str
    model: str
    version: str
    corpus: str
    corpus_version: int
    latest_corpus_version: int | None
    state: str
    rows: int
    chunks_done: int
    chunks: int
    build_seconds: float
    docs_per_s: float | None
    ann: str
    ann_recall_at_10: float | None
    freshness_lag_s: float | None
    error: str | None


@dataclass(frozen=True)
class IndexInventory:
    root: str
    indexes: list[IndexRow]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "indexes": [asdict(r) for r in self.indexes]}


def inventory(
    root: Path, corpora: CorpusStore, model: str | None = None, *, now: dt.datetime | None = None
) -> IndexInventory:
    now = now or dt.datetime.now(dt.UTC)
    rows = []
    for m in all_manifests(root):
        if model is not None and m.model.name != model:
            continue
        versions = corpora.versions(m.corpus) if m.corpus in corpora.names() else []
        rows.append(row(m, versions, now))
    return IndexInventory(str(root), rows)


def row(m: IndexManifest, versions: Sequence[CorpusVersion], now: dt.datetime) -> IndexRow:
    return IndexRow(
        index_id=m.index_id,
        model=m.model.name,
        version=m.model.version,
        corpus=m.corpus,
        corpus_version=m.corpus_version,
        latest_corpus_version=versions[-1].version if versions else None,
        state=m.state,
        rows=m.rows,
        chunks_done=m.chunks_done,
        chunks=m.chunks,
        build_seconds=round(m.build_seconds, 2),
        docs_per_s=m.docs_per_s,
        ann=str(m.ann["type"]) if m.ann else "exact",
        ann_recall_at_10=m.ann_recall_at_10,
        freshness_lag_s=round(freshness_lag(m.corpus_version, versions, now), 1) if versions else None,
        error=m.error,
    )


def removable_versions(indexed: set[str], production_moves: Sequence[str], aliased: set[str], keep: int) -> set[str]:
    """Versions (of ``indexed``) whose indexes ``gc`` removes. Kept: the last ``keep`` distinct
    production versions (``production_moves`` oldest first), every version an alias points at, and
    every version never in production that is newer than the newest that was (not judged yet: a
    promotion may be building its index right now)."""
    recent: list[str] = []
    for version in reversed(production_moves):
        if version not in recent:
            recent.append(version)
    newest = max((int(v) for v in production_moves), default=0)
    unjudged = {v for v in indexed if v not in recent and int(v) > newest}
    return indexed - set(recent[:keep]) - aliased - unjudged
