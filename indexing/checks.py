"""The rules an index must pass, as pure functions over ids, vectors and file digests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from indexing.corpus import Document


def chunk_plan(documents: Sequence[Document], chunk_size: int) -> list[list[Document]]:
    """Documents longest first (tie: id), cut into chunks: the same corpus always gives the same chunks,
    so a resumed build encodes each chunk exactly as an uninterrupted one would."""
    ordered = sorted(documents, key=lambda d: (-len(d.text), d.id))
    return [ordered[i : i + chunk_size] for i in range(0, len(ordered), chunk_size)]


def committed_chunks(plan: Sequence[Sequence[Document]], ids: Sequence[str], chunks: Sequence[int]) -> set[int]:
    """Chunks whose every row is in the table (a commit is atomic, so a chunk is in whole or not at all)."""
    present = Counter(chunks)
    return {n for n, part in enumerate(plan) if present.get(n, 0) == len(part)}


def vector_problems(
    ids: Sequence[str], vectors: np.ndarray, expected_ids: set[str], dimension: int, *, limit: int = 5
) -> list[str]:
    """What keeps these rows from being exactly the corpus, each once, as finite vectors of ``dimension``."""
    problems = []
    if len(ids) != len(expected_ids):
        problems.append(f"{len(ids)} rows, the corpus version has {len(expected_ids)}")
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        problems.append(f"ids stored twice: {', '.join(repeated[:limit])}")
    missing = expected_ids.difference(ids)
    if missing:
        problems.append(f"{len(missing)} documents missing (e.g. {', '.join(sorted(missing)[:limit])})")
    extra = set(ids).difference(expected_ids)
    if extra:
        problems.append(f"{len(extra)} rows not in the corpus version (e.g. {', '.join(sorted(extra)[:limit])})")
    if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dimension):
        problems.append(f"vectors of shape {vectors.shape}, the model's dimension is {dimension}")
    elif len(vectors):
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if len(bad):
            problems.append(f"{len(bad)} vectors with NaN or infinity (e.g. id {ids[int(bad[0])]})")
    return problems


def recall_at_k(approximate: Sequence[Sequence[str]], exact: Sequence[Sequence[str]], k: int = 10) -> float:
    """Mean share of each exact top-k that the approximate top-k also found."""
    if not exact:
        raise ValueError("recall needs at least one query")
    shares = [len(set(a[:k]) & set(e[:k])) / min(k, len(e)) for a, e in zip(approximate, exact, strict=True) if e]
    return float(np.mean(shares))


def file_problems(expected: dict[str, str], actual: dict[str, str], mutable: frozenset[str] = frozenset()) -> list[str]:
    """Files recorded at verification that are gone or changed (files written since are not checked:
    no verified version reads them; nor are files named in ``mutable``, which every write rewrites)."""
    expected = {name: digest for name, digest in expected.items() if name.rsplit("/", 1)[-1] not in mutable}
    problems = [f"{name} changed" for name in sorted(expected) if name in actual and actual[name] != expected[name]]
    return problems + [f"{name} is missing" for name in sorted(set(expected) - set(actual))]
