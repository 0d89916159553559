"""Exact top-k search with matrix products in bounded chunks."""

from __future__ import annotations

import numpy as np
import torch

SIMILARITIES = ("cosine", "dot")


def top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    similarity: str = "cosine",
    query_chunk: int = 1024,
    corpus_chunk: int = 50_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores, indices), each (n_queries, min(k, n_docs)), best first.

    Memory stays at one (query_chunk x corpus_chunk) score block plus the running top-k, so a
    large corpus never materializes a full query-by-document matrix.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got '{similarity}'")
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    c = torch.from_numpy(np.ascontiguousarray(corpus, dtype=np.float32))
    if similarity == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        c = torch.nn.functional.normalize(c, dim=1)
    k = min(k, c.shape[0])
    all_scores, all_idx = [], []
    for qs in range(0, q.shape[0], query_chunk):
        qb = q[qs : qs + query_chunk]
        best_s = torch.full((qb.shape[0], 0), float("-inf"))
        best_i = torch.zeros((qb.shape[0], 0), dtype=torch.long)
        for cs in range(0, c.shape[0], corpus_chunk):
            block = qb @ c[cs : cs + corpus_chunk].T
            s, i = torch.topk(block, min(k, block.shape[1]), dim=1)
            best_s = torch.cat([best_s, s], dim=1)
            best_i = torch.cat([best_i, i + cs], dim=1)
            if best_s.shape[1] > k:
                best_s, pos = torch.topk(best_s, k, dim=1)
                best_i = torch.gather(best_i, 1, pos)
        all_scores.append(best_s)
        all_idx.append(best_i)
    return torch.cat(all_scores).numpy(), torch.cat(all_idx).numpy()
