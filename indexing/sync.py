"""Bring a verified index to a newer corpus version by encoding only what changed.

Deleted and changed documents leave, new and changed ones are encoded and added, each in its own
commit; then the rows are verified against the new corpus version and the manifest moves to it (the
commit point). Readers stay on the verified table version until then, so a sync is invisible until
it is whole. A sync killed halfway leaves the manifest at the old version; the next sync first
restores the table to it, then starts over.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedops.core import progress
from embedops.core.errors import CorpusError, VectorIndexError
from indexing import lance
from indexing.build import CHUNK_SIZE, Encoder, encode_texts, now
from indexing.checks import vector_problems
from indexing.corpus import Document, delta
from indexing.corpus_store import CorpusVersion
from indexing.inventory import freshness_lag
from indexing.manifest import IndexManifest, ModelIdentity, write_manifest
from indexing.search import guard

SYNC_CHUNK = -1  # the chunk number of rows a sync added (build chunks are 0, 1, ...)


@dataclass(frozen=True)
class SyncResult:
    index_id: str
    from_version: int
    to_version: int
    upserts: int
    deletes: int
    seconds: float
    lag_before_s: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sync_index(
    root: Path,
    manifest: IndexManifest,
    model: ModelIdentity,
    encoder: Encoder,
    target: CorpusVersion,
    versions: Sequence[CorpusVersion],
    old: Sequence[Document],
    new: Sequence[Document],
    *,
    recheck: Callable[[], object],
    batch_size: int = 32,
) -> tuple[IndexManifest, SyncResult]:
    """``manifest``'s index (corpus documents ``old``) brought to ``target`` (documents ``new``)."""
    guard(manifest, model)
    if manifest.state != "verified":
        raise VectorIndexError(f"index {manifest.index_id} is {manifest.state}: build it before syncing it")
    if manifest.table_version is None:
        raise VectorIndexError(f"index {manifest.index_id} has no verified table version")
    lag = freshness_lag(manifest.corpus_version, versions, dt.datetime.now(dt.UTC))
    start = time.perf_counter()
    table = lance.open_table(root, manifest.index_id)
    lance.restore(table, manifest.table_version)  # a killed sync's half-written commits are dropped
    change = delta(old, new)
    try:
        stale = [d.id for d in change.upserts] + change.deletes
        lance.delete_ids(table, stale)
        with progress.phase(
            f"syncing {manifest.index_id} to {target.name} v{target.version}: "
            f"{len(change.upserts):,} to encode, {len(change.deletes):,} to delete",
            count=len(change.upserts),
            unit="docs",
        ):
            for begin in range(0, len(change.upserts), CHUNK_SIZE):
                part = change.upserts[begin : begin + CHUNK_SIZE]
                vectors = encode_texts(
                    encoder, [d.text for d in part], batch_size=batch_size, precision=manifest.precision
                )
                if not np.isfinite(vectors).all():
                    raise VectorIndexError(f"the model gave a NaN or infinite vector while syncing {manifest.index_id}")
                lance.add(table, [d.id for d in part], SYNC_CHUNK, vectors)
        try:
            recheck()
        except CorpusError as exc:
            raise VectorIndexError(f"the corpus changed during the sync ({exc})") from None
        ids, vectors = lance.vectors(table)
        problems = vector_problems(ids, vectors, {d.id for d in new}, model.dimension)
        if problems:
            raise VectorIndexError(f"index {manifest.index_id} after the sync: {'; '.join(problems)}")
    except BaseException:
        lance.restore(table, manifest.table_version)  # nothing half-synced stays at the head
        raise
    seconds = time.perf_counter() - start
    result = SyncResult(
        manifest.index_id,
        manifest.corpus_version,
        target.version,
        len(change.upserts),
        len(change.deletes),
        round(seconds, 3),
        round(lag, 1),
        len(ids),
    )
    synced = manifest.evolve(
        corpus_version=target.version,
        corpus_digest=target.digest,
        rows=len(ids),
        table_version=int(table.version),
        files=lance.checksums(root, manifest.index_id),
        verified_at=now(),
        syncs=[*manifest.syncs, {**result.to_dict(), "at": now()}],
    )
    return write_manifest(root, synced), result
