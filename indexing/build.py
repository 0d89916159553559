"""Build an index: encode a corpus version with one model, chunk by chunk, then verify it.

Each chunk is encoded and appended in one LanceDB commit, and the manifest records progress after
it. A build killed at any moment leaves whole chunks only; run again, it keeps them and encodes the
rest (the chunks are the same every time: see ``checks.chunk_plan``). Until verification passes the
manifest says ``building`` and nothing searches the index.

Who encodes a chunk is an engine's business: in this process (``LocalEngine``, the default) or on a
Ray cluster (``indexing.ray_engine``), in any order. Committing, the manifest and verification stay
here, so every engine makes the same index.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from embedops.core import progress
from embedops.core.errors import CorpusError, VectorIndexError
from evaluation.precision import autocast, effective_precision
from indexing import lance
from indexing.checks import chunk_plan, committed_chunks, recall_at_k, vector_problems
from indexing.corpus import Document
from indexing.corpus_store import CorpusVersion
from indexing.manifest import IndexManifest, ModelIdentity, index_id, read_manifest, write_manifest

log = logging.getLogger(__name__)

CHUNK_SIZE = 256  # a kill loses at most one chunk of work; each chunk is one commit
ANN_THRESHOLD = 100_000  # rows from which an ANN index is built; below it, exact search is fast enough
RECALL_SAMPLE = 100  # corpus vectors used as queries to measure ANN recall@10 against exact search


class Encoder(Protocol):
    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


@runtime_checkable
class ChunkEngine(Protocol):
    """Encodes numbered chunks of texts and yields each chunk's vectors as it finishes, in any order."""

    def encode_chunks(self, chunks: Sequence[tuple[int, list[str]]]) -> Iterator[tuple[int, np.ndarray]]: ...


@dataclass(frozen=True)
class BuildOptions:
    chunk_size: int = CHUNK_SIZE
    batch_size: int = 32
    precision: str = "fp32"
    ann_threshold: int = ANN_THRESHOLD
    ann_params: dict[str, Any] | None = None
    recall_sample: int = RECALL_SAMPLE


@dataclass(frozen=True)
class BuildResult:
    manifest: IndexManifest
    encoded: int  # documents encoded by this run
    kept_chunks: int  # chunks a killed earlier run had committed
    already: bool  # the index was verified already: nothing done

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoded": self.encoded,
            "kept_chunks": self.kept_chunks,
            "already": self.already,
            **self.manifest.to_dict(),
        }


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def encode_texts(encoder: Encoder, texts: list[str], *, batch_size: int, precision: str) -> np.ndarray:
    with autocast(effective_precision(precision)):
        vectors = encoder.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


@dataclass
class LocalEngine:
    """Encodes in this process, chunk after chunk."""

    encoder: Encoder
    batch_size: int = 32
    precision: str = "fp32"

    def encode_chunks(self, chunks: Sequence[tuple[int, list[str]]]) -> Iterator[tuple[int, np.ndarray]]:
        for n, texts in chunks:
            yield n, encode_texts(self.encoder, texts, batch_size=self.batch_size, precision=self.precision)


def start_or_resume(
    root: Path, model: ModelIdentity, corpus: CorpusVersion, options: BuildOptions, chunks: int
) -> tuple[IndexManifest, bool]:
    """(manifest to continue, whether the table's committed chunks are kept)."""
    name = index_id(model.name, model.version, corpus.name)
    old = read_manifest(root, name)
    same = (
        old is not None
        and old.state == "building"
        and old.model == model
        and old.corpus_version == corpus.version
        and old.corpus_digest == corpus.digest
        and old.chunk_size == options.chunk_size
        and old.precision == options.precision
        and lance.exists(root, name)
    )
    if same and old is not None:
        return old.evolve(attempts=old.attempts + 1), True
    lance.create(root, name, model.dimension)
    fresh = IndexManifest(
        index_id=name,
        model=model,
        corpus=corpus.name,
        corpus_version=corpus.version,
        corpus_digest=corpus.digest,
        rows=corpus.rows,
        state="building",
        chunk_size=options.chunk_size,
        chunks=chunks,
        precision=options.precision,
        started=now(),
        attempts=1,
    )
    return write_manifest(root, fresh), False


def build_index(
    root: Path,
    model: ModelIdentity,
    encoder: Encoder | ChunkEngine,
    corpus: CorpusVersion,
    documents: Sequence[Document],
    *,
    recheck: Callable[[], object],
    options: BuildOptions = BuildOptions(),
    after_chunk: Callable[[int], None] | None = None,
) -> BuildResult:
    """Encode ``documents`` (corpus version ``corpus``) with ``encoder`` into a verified index.

    ``encoder`` is a sentence-transformers model (encoded here) or a ``ChunkEngine``.
    ``recheck`` reads the corpus version again and raises if it changed: called before verifying, so
    an index never claims a version whose documents changed under the build. ``after_chunk`` is
    called with each committed chunk's number (tests kill or tamper there)."""
    existing = read_manifest(root, index_id(model.name, model.version, corpus.name))
    if (
        existing is not None
        and existing.state == "verified"
        and existing.model == model
        and existing.corpus_version == corpus.version
    ):
        return BuildResult(existing, 0, 0, True)
    plan = chunk_plan(documents, options.chunk_size)
    manifest, keep = start_or_resume(root, model, corpus, options, len(plan))
    table = lance.open_table(root, manifest.index_id)
    done = committed_chunks(plan, *lance.id_chunks(table)) if keep else set()
    partial = [n for n in set(lance.id_chunks(table)[1]) if n not in done] if keep else []
    if partial:  # cannot happen with atomic commits; a chunk half in is redone whole, never trusted
        lance.delete_chunks(table, partial)
    manifest = write_manifest(root, manifest.evolve(resumed_chunks=len(done), chunks_done=len(done)))
    todo = [n for n in range(len(plan)) if n not in done]
    remaining = sum(len(plan[n]) for n in todo)
    if done:
        progress.say(f"resuming {manifest.index_id}: {len(done)} of {len(plan)} chunks were committed")
    encoded = 0
    with progress.phase(
        f"encoding {remaining:,} documents of {corpus.name} v{corpus.version}", count=remaining, unit="docs"
    ):
        bar = docs_bar(remaining, manifest.index_id)
        engine = (
            encoder
            if isinstance(encoder, ChunkEngine)
            else LocalEngine(encoder, batch_size=options.batch_size, precision=options.precision)
        )
        start = time.perf_counter()
        for n, vectors in engine.encode_chunks([(n, [d.text for d in plan[n]]) for n in todo]):
            part = plan[n]
            if vectors.shape[0] != len(part):
                raise fail(root, manifest, f"chunk {n} came back with {vectors.shape[0]} vectors for {len(part)} texts")
            bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
            if len(bad):  # the store would refuse them anyway; say which document and stop for good
                raise fail(root, manifest, f"the model gave a NaN or infinite vector for id {part[int(bad[0])].id}")
            lance.add(table, [d.id for d in part], n, vectors)
            encoded += len(part)
            # build time is wall time between commits: the same measure for an engine encoding in parallel
            finished = time.perf_counter()
            manifest = write_manifest(
                root,
                manifest.evolve(
                    chunks_done=manifest.chunks_done + 1, build_seconds=manifest.build_seconds + finished - start
                ),
            )
            start = finished
            bar.update(len(part))
            if after_chunk is not None:
                after_chunk(n)
        bar.close()
    return BuildResult(verify(root, manifest, documents, recheck=recheck, options=options), encoded, len(done), False)


def docs_bar(total: int, what: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="docs", desc=what, disable=not progress.bars(), smoothing=0.1)


def fail(root: Path, manifest: IndexManifest, reason: str) -> VectorIndexError:
    write_manifest(root, manifest.evolve(state="failed", error=reason))
    return VectorIndexError(f"index {manifest.index_id} failed verification: {reason}")


def verify(
    root: Path,
    manifest: IndexManifest,
    documents: Sequence[Document],
    *,
    recheck: Callable[[], object],
    options: BuildOptions,
) -> IndexManifest:
    """Row count, ids, finite vectors of the right dimension; ANN recall above the threshold; file digests."""
    with progress.phase(f"verifying {manifest.index_id}"):
        try:
            recheck()
        except CorpusError as exc:
            raise fail(root, manifest, f"the corpus changed during the build ({exc})") from None
        table = lance.open_table(root, manifest.index_id)
        if len(table.list_versions()) > 20:
            lance.compact(table)
        ids, vectors = lance.vectors(table)
        problems = vector_problems(ids, vectors, {d.id for d in documents}, manifest.model.dimension)
        if problems:
            raise fail(root, manifest, "; ".join(problems))
        ann, recall = None, None
        if len(ids) >= options.ann_threshold:
            ann = lance.build_ann(
                table, similarity=manifest.model.similarity, rows=len(ids), params=options.ann_params or {}
            )
            recall = measure_recall(table, vectors, manifest.model.similarity, ann, options.recall_sample)
            progress.say(f"  ANN recall@10 vs exact search on {options.recall_sample} queries: {recall:.3f}")
        seconds = manifest.build_seconds
        verified = manifest.evolve(
            state="verified",
            ann=ann,
            ann_recall_at_10=recall,
            table_version=int(table.version),
            files=lance.checksums(root, manifest.index_id),
            verified_at=now(),
            docs_per_s=round(manifest.rows / seconds, 1) if seconds > 0 else None,
            error=None,
        )
        return write_manifest(root, verified)


def measure_recall(table: Any, vectors: np.ndarray, similarity: str, ann: dict[str, Any], sample: int) -> float:
    rng = random.Random(0)
    picks = rng.sample(range(len(vectors)), min(sample, len(vectors)))
    approximate, exact = [], []
    for i in picks:
        approximate.append([h[0] for h in lance.search(table, vectors[i], similarity=similarity, k=10, ann=ann)])
        exact.append([h[0] for h in lance.search(table, vectors[i], similarity=similarity, k=10, ann=None)])
    return recall_at_k(approximate, exact, 10)
