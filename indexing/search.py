"""Searching an index, only ever with the model that built it and only once it is verified.

The fingerprint guard compares the weights digest of the model asking with the one that built the
index: a query vector from one version against document vectors from another is a quietly wrong
answer (on the demo's help center, nDCG@10 0.909 where either matched pair scores 0.97-0.99), so it
is an error that names both. The index is read at the LanceDB version that was verified, after its
files are checked against the digests recorded then.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedops.core.errors import VectorIndexError
from indexing import lance
from indexing.build import Encoder, encode_texts
from indexing.checks import file_problems
from indexing.manifest import IndexManifest, ModelIdentity, all_manifests, index_id, read_manifest


@dataclass(frozen=True)
class Hit:
    id: str
    score: float


@dataclass(frozen=True)
class Answer:
    query: str
    hits: list[Hit]
    model_version: str
    index_id: str
    encode_ms: float
    search_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "model_version": self.model_version,
            "index_id": self.index_id,
            "hits": [{"id": h.id, "score": round(h.score, 6)} for h in self.hits],
            "encode_ms": round(self.encode_ms, 3),
            "search_ms": round(self.search_ms, 3),
        }


def guard(manifest: IndexManifest, model: ModelIdentity) -> None:
    """Refuse a model whose weights did not build this index."""
    built = manifest.model
    if model.weights_digest != built.weights_digest or model.name != built.name:
        raise VectorIndexError(
            f"index {manifest.index_id} was built by {built.label} (weights {built.weights_digest[:12]}); "
            f"the model asking is {model.label} (weights {model.weights_digest[:12]}): vectors of two versions "
            f"never answer together; search with {built.label}, or build {model.label}'s index"
        )


def find(root: Path, model: ModelIdentity, corpus: str) -> IndexManifest:
    """The verified index of ``model`` for ``corpus``, or an error that says what to run."""
    manifest = read_manifest(root, index_id(model.name, model.version, corpus))
    build = f"embedops index build {model.name} --version {model.version} --corpus {corpus}"
    if manifest is None:
        others = [m.index_id for m in all_manifests(root) if m.corpus == corpus and m.model.name == model.name]
        also = f" (indexes of {corpus}: {', '.join(others)})" if others else ""
        raise VectorIndexError(f"{model.label} has no index of corpus '{corpus}' in {root}{also}; build it: {build}")
    if manifest.state != "verified":
        why = f": {manifest.error}" if manifest.error else f" ({manifest.chunks_done}/{manifest.chunks} chunks)"
        raise VectorIndexError(f"index {manifest.index_id} is {manifest.state}{why}; finish it: {build}")
    return manifest


def open_verified(root: Path, manifest: IndexManifest) -> Any:
    """The table at its verified version, after its files pass their recorded sha256."""
    problems = file_problems(manifest.files, lance.checksums(root, manifest.index_id), lance.MUTABLE)
    if problems:
        raise VectorIndexError(
            f"index {manifest.index_id} is not as verified: {'; '.join(problems[:3])}; rebuild it "
            f"(embedops index build {manifest.model.name} --version {manifest.model.version} "
            f"--corpus {manifest.corpus} --rebuild)"
        )
    return lance.open_table(root, manifest.index_id, manifest.table_version)


class Searcher:
    """A verified index and the model that built it, ready to answer."""

    def __init__(self, root: Path, manifest: IndexManifest, model: ModelIdentity, encoder: Encoder) -> None:
        if manifest.state != "verified":
            raise VectorIndexError(f"index {manifest.index_id} is {manifest.state}, not verified: nothing searches it")
        guard(manifest, model)
        self.manifest, self.model, self.encoder = manifest, model, encoder
        self.table = open_verified(root, manifest)
        self._rows: tuple[list[str], np.ndarray] | None = None  # the verified vectors, read once for batches

    def search(self, queries: Sequence[str], k: int = 10) -> list[Answer]:
        start = time.perf_counter()
        vectors = encode_texts(self.encoder, list(queries), batch_size=32, precision=self.manifest.precision)
        encode_ms = (time.perf_counter() - start) * 1000 / max(len(queries), 1)
        answers = []
        for query, vector in zip(queries, vectors, strict=True):
            start = time.perf_counter()
            found = lance.search(self.table, vector, similarity=self.model.similarity, k=k, ann=self.manifest.ann)
            search_ms = (time.perf_counter() - start) * 1000
            hits = [Hit(i, s) for i, s in found]
            answers.append(Answer(query, hits, self.model.version, self.manifest.index_id, encode_ms, search_ms))
        return answers

    def search_batch(self, queries: Sequence[str], k: int = 10) -> list[Answer]:
        """Many queries at once. An exact index is scored as one matrix product over its verified
        vectors (thousands of queries cost about what their encoding does); an ANN index is searched
        one query at a time, as ``search`` does. Scores are the store's (``lance.score``)."""
        if self.manifest.ann is not None or not queries:
            return self.search(queries, k)
        start = time.perf_counter()
        vectors = encode_texts(self.encoder, list(queries), batch_size=32, precision=self.manifest.precision)
        encode_ms = (time.perf_counter() - start) * 1000 / len(queries)
        start = time.perf_counter()
        found: list[list[Hit]] = []
        for first in range(0, len(queries), 256):  # 256 x 100,000 rows of scores is 100 MB at most
            ids, scores = self.score_all(vectors[first : first + 256])
            kk = min(k, len(ids))
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]  # the best of each row, unordered
            order = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
            found += [[Hit(ids[j], float(scores[i, j])) for j in row] for i, row in enumerate(order)]
        search_ms = (time.perf_counter() - start) * 1000 / len(queries)
        return [
            Answer(query, hits, self.model.version, self.manifest.index_id, encode_ms, search_ms)
            for query, hits in zip(queries, found, strict=True)
        ]

    def score_all(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(ids, scores of every query vector against every row) under the model's similarity."""
        if self._rows is None:
            ids, rows = lance.vectors(self.table)
            rows = rows.astype(np.float32, copy=False)
            if self.model.similarity == "cosine":
                rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            self._rows = (ids, rows)
        ids, rows = self._rows
        q = np.asarray(vectors, dtype=np.float32)
        if self.model.similarity == "cosine":
            return ids, (q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)) @ rows.T
        if self.model.similarity == "dot":
            return ids, q @ rows.T
        squared = (q**2).sum(1)[:, None] - 2 * q @ rows.T + (rows**2).sum(1)[None, :]
        return ids, -np.sqrt(np.maximum(squared, 0.0))
