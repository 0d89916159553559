"""The LanceDB edge: every call into the vector store is here, so the rest works with numpy and lists.

One LanceDB database (a folder) holds one table per index. A write (``add``, ``delete``) is one
atomic commit that makes a new table version; a reader that checked out a version never sees a
later write, half or whole. That is what lets a build commit chunk by chunk and a server keep
answering from the verified version while a sync writes the next.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedops.core.files import file_sha256

os.environ.setdefault("LANCEDB_LOG", "error")  # LanceDB's Rust side warns on stderr about routine things

# sentence-transformers' similarity names -> LanceDB's distance types; the score is 1 - distance for
# cosine and dot (LanceDB's dot distance is 1 - x.y), minus the distance for euclidean.
DISTANCES = {"cosine": "cosine", "dot": "dot", "euclidean": "l2"}


def distance_type(similarity: str) -> str:
    from embedops.core.errors import VectorIndexError

    if similarity not in DISTANCES:
        raise VectorIndexError(f"similarity '{similarity}' has no vector-store distance (use {', '.join(DISTANCES)})")
    return DISTANCES[similarity]


def score(similarity: str, distance: float) -> float:
    if similarity == "euclidean":
        return -float(np.sqrt(max(distance, 0.0)))
    return 1.0 - float(distance)


def connect(root: Path) -> Any:
    import lancedb

    root.mkdir(parents=True, exist_ok=True)
    return lancedb.connect(str(root))


def table_path(root: Path, name: str) -> Path:
    return root / f"{name}.lance"


def create(root: Path, name: str, dimension: int) -> Any:
    """An empty index table (any old one of that name is replaced)."""
    import pyarrow as pa

    schema = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("chunk", pa.int32(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dimension), nullable=False),
        ]
    )
    return connect(root).create_table(name, schema=schema, mode="overwrite")


def open_table(root: Path, name: str, version: int | None = None) -> Any:
    table = connect(root).open_table(name)
    if version is not None:
        table.checkout(version)
    return table


def exists(root: Path, name: str) -> bool:
    return table_path(root, name).is_dir()


def drop(root: Path, name: str) -> None:
    if exists(root, name):
        connect(root).drop_table(name)


def rows(ids: Sequence[str], chunk: int, vectors: np.ndarray) -> Any:
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "chunk": pa.array(np.full(len(ids), chunk, dtype=np.int32)),
            "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
        }
    )


def add(table: Any, ids: Sequence[str], chunk: int, vectors: np.ndarray) -> int:
    """Append rows in one commit; the table version it made."""
    table.add(rows(ids, chunk, vectors))
    return int(table.version)


def delete_ids(table: Any, ids: Sequence[str]) -> None:
    for start in range(0, len(ids), 1000):  # one SQL IN list per thousand ids
        quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids[start : start + 1000])
        table.delete(f"id IN ({quoted})")


def column(table: Any, name: str) -> list[Any]:
    """One scalar column of every row (no vectors read)."""
    return list(table.search().select([name]).limit(None).to_arrow().column(name).to_pylist())


def id_chunks(table: Any) -> tuple[list[str], list[int]]:
    found = table.search().select(["id", "chunk"]).limit(None).to_arrow()
    return found.column("id").to_pylist(), found.column("chunk").to_pylist()


def vectors(table: Any) -> tuple[list[str], np.ndarray]:
    """Every id and vector (for verification): the whole table in memory."""
    found = table.to_arrow()
    flat = found.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    dimension = found.schema.field("vector").type.list_size
    return found.column("id").to_pylist(), flat.reshape(-1, dimension)


def search(
    table: Any, query: np.ndarray, *, similarity: str, k: int, ann: Mapping[str, Any] | None
) -> list[tuple[str, float]]:
    """(id, score) of the ``k`` nearest rows, best first: exact when ``ann`` is None, else through the
    ANN index with the query settings it was built and verified with."""
    q = table.search(np.asarray(query, dtype=np.float32)).distance_type(distance_type(similarity)).limit(k)
    if ann is None:
        q = q.bypass_vector_index()
    else:
        # indexes verified before the query settings were recorded search every partition, ef 1.5k (LanceDB's)
        q = q.nprobes(int(ann.get("nprobes") or ann.get("num_partitions") or 20))
        if ann.get("ef"):
            q = q.ef(max(int(ann["ef"]), k))
    found = q.select(["id", "_distance"]).to_arrow()
    return [
        (i, score(similarity, d))
        for i, d in zip(found.column("id").to_pylist(), found.column("_distance").to_pylist(), strict=True)
    ]


# Measured on 1,000,000 clustered 384-d vectors, 2 cores (benchmarks/RESULTS.md, "Index search"): with
# one partition per 100,000 rows and every partition probed, ef 64 gave recall@10 0.966 at p99 18 ms;
# LanceDB's query default (ef 1.5k) stops at 0.85, and ef 100 buys 0.002 more for another millisecond.
ANN_EF = 64


def build_ann(table: Any, *, similarity: str, rows: int, params: dict[str, Any]) -> dict[str, Any]:
    """An IVF-HNSW index with scalar-quantized vectors; its build parameters and query settings."""
    partitions = int(params.get("num_partitions") or max(1, rows // 100_000))
    m, ef_construction = int(params.get("m", 20)), int(params.get("ef_construction", 300))
    table.create_index(
        metric=distance_type(similarity),
        vector_column_name="vector",
        index_type="IVF_HNSW_SQ",
        num_partitions=partitions,
        m=m,
        ef_construction=ef_construction,
    )
    return {
        "type": "IVF_HNSW_SQ",
        "num_partitions": partitions,
        "m": m,
        "ef_construction": ef_construction,
        "nprobes": int(params.get("nprobes") or partitions),
        "ef": int(params.get("ef") or ANN_EF),
    }


def compact(table: Any) -> None:
    """Merge the small fragments chunked commits leave (no version is removed: readers keep theirs)."""
    import datetime as dt

    table.optimize(cleanup_older_than=dt.timedelta(days=3650))


# Rewritten by every commit (a pointer to the newest version, which readers of a pinned version never
# follow); every other file of a Lance table is written once and never changed.
MUTABLE = frozenset({"latest_version_hint.json", "_latest.manifest"})


def checksums(root: Path, name: str) -> dict[str, str]:
    """sha256 of every immutable file of the table, by path relative to the database folder."""
    folder = table_path(root, name)
    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in MUTABLE
    }


def delete_chunks(table: Any, chunks: Sequence[int]) -> None:
    table.delete(f"chunk IN ({', '.join(str(int(c)) for c in chunks)})")


def restore(table: Any, version: int) -> None:
    """Make ``version`` the table's head again (a new commit): undoes a write that was never verified."""
    if int(table.version) != version:
        table.checkout(version)
        table.restore()
