"""A short Optuna study on SciFact against the default training config, both scored on SciFact test.

The study trains on SciFact train minus a dev split (20% of the train queries, seeded) and scores
its objective on that dev split (corpus: the dev queries' judged abstracts plus 1,000 fixed random
others, so a trial's evaluation stays short). The default config (learning rate 2e-5, batch 32,
scale 20, warmup 0.1) trains on the same pairs. Then both models are scored on the untouched test
split with the full corpus. Runs the real CLI in a fresh EMBEDOPS_HOME.

    python benchmarks/tune_scifact.py [--n-trials 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, require_dataset, today

SEARCH = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 2e-4, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    "scale": {"type": "float", "low": 10.0, "high": 40.0},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def carve(scifact: Path, out: Path, seed: int = 0) -> tuple[Path, Path, int, int]:
    """(dev golden folder, training pairs without the dev queries, #dev queries, #pairs)."""
    qrels: dict[str, list[str]] = {}
    for line in (scifact / "qrels" / "train.tsv").read_text().splitlines()[1:]:
        q, d, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(q, []).append(d)
    ids = sorted(qrels)
    dev = set(random.Random(seed).sample(ids, len(ids) // 5))
    corpus = {d["_id"]: d for d in read_jsonl(scifact / "corpus.jsonl")}
    queries = {q["_id"]: q for q in read_jsonl(scifact / "queries.jsonl")}
    judged = {d for q in dev for d in qrels[q]}
    others = random.Random(seed).sample(sorted(set(corpus) - judged), 1000)

    golden = out / "scifact-dev"
    (golden / "qrels").mkdir(parents=True)
    (golden / "corpus.jsonl").write_text("".join(json.dumps(corpus[d]) + "\n" for d in sorted(judged) + others))
    (golden / "queries.jsonl").write_text("".join(json.dumps(queries[q]) + "\n" for q in sorted(dev)))
    (golden / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q in sorted(dev) for d in qrels[q])
    )
    pairs = [
        {"anchor": queries[q]["text"], "positive": f"{corpus[d].get('title', '')} {corpus[d]['text']}".strip()}
        for q in ids
        if q not in dev
        for d in qrels[q]
    ]
    (out / "tune_pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return golden, out / "tune_pairs.jsonl", len(dev), len(pairs)


def cli(args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "embedops", *args, "--json"], env=env, cwd=REPO, capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"embedops {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-trials", type=int, default=6)
    n_trials = parser.parse_args().n_trials
    scifact = require_dataset("scifact")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        golden_dev, pairs, n_dev, n_pairs = carve(scifact, work)
        config = work / "tune.yaml"
        config.write_text(
            json.dumps(
                {
                    "train": {
                        "data": str(pairs),
                        "golden": str(golden_dev),
                        "golden_split": "dev",
                        "epochs": 1,
                        "model_name": "scifact-tuned",
                        "experiment": "scifact-tuning",
                    },
                    "search_space": SEARCH,
                    "sampler": {"type": "tpe", "seed": 42, "n_startup_trials": 3},
                    "pruner": {"type": "none"},
                    "n_trials": n_trials,
                }
            )
        )
        env = os.environ | {"EMBEDOPS_HOME": str(work / "home")}
        env.pop("MLFLOW_TRACKING_URI", None)

        start = time.perf_counter()
        study = cli(["tune", "--config", str(config)], env)
        study_seconds = time.perf_counter() - start
        tuned = cli(
            [
                "evaluate",
                "--model",
                f"models:/scifact-tuned/{study['version']}",
                "--golden",
                str(scifact),
                "--split",
                "test",
                "--latency-calls",
                "0",
            ],
            env,
        )["metrics"]
        default = cli(
            [
                "train",
                "--data",
                str(pairs),
                "--golden",
                str(scifact),
                "--golden-split",
                "test",
                "--epochs",
                "1",
                "--name",
                "scifact-default",
            ],
            env,
        )["metrics"]

    print(f"machine: {machine()}  date: {today()}")
    print(f"command: python benchmarks/tune_scifact.py --n-trials {n_trials}")
    print(
        f"dev split {n_dev} train queries (objective), {n_pairs} training pairs; study {n_trials} trials in "
        f"{study_seconds / 60:.1f} min: {study['trials']}"
    )
    params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in study["best_params"].items())
    print(f"best trial {study['best_trial']}: dev ndcg_at_10 {study['best_value']:.4f} with {params}")
    for name in ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_100"):
        print(
            f"test {name:14s} default {default[name]:.4f}  tuned {tuned[name]:.4f}  "
            f"delta {tuned[name] - default[name]:+.4f}"
        )


if __name__ == "__main__":
    main()
