"""One epoch of contrastive fine-tuning of all-MiniLM-L6-v2 on SciFact train, scored on SciFact test.

The base model is scored in the same run (`--evaluate-base`) on the same golden digest, so the
two nDCG@10 figures are directly comparable. Runs the real CLI in a fresh EMBEDOPS_HOME.

    python benchmarks/scifact_finetune.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from common import REPO, machine, require_dataset, today


def main() -> None:
    scifact = require_dataset("scifact")
    command = [
        "embedops",
        "train",
        "--data",
        str(scifact),
        "--data-split",
        "train",
        "--golden",
        str(scifact),
        "--golden-split",
        "test",
        "--loss",
        "contrastive",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--learning-rate",
        "2e-5",
        "--name",
        "scifact-minilm",
        "--evaluate-base",
        "--json",
    ]
    with tempfile.TemporaryDirectory() as home:
        env = os.environ | {"EMBEDOPS_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        start = time.perf_counter()
        exe = [sys.executable, "-m", "embedops", *command[1:]]
        out = subprocess.run(exe, env=env, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"embedops train failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout)
    base, tuned = result["base_metrics"], result["metrics"]
    print(f"machine: {machine()}  date: {today()}")
    shown = " ".join(c.replace(str(scifact), "../shared/data/scifact") for c in command)
    print(f"command: {shown}")
    print(
        f"train rows {result['data']['rows']}, steps {int(result['train']['train_steps'])}, "
        f"{result['train']['train_pairs_per_second']:.1f} pairs/s, wall {seconds:.0f} s"
    )
    for name in ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_100"):
        print(f"{name:14s} base {base[name]:.4f}  fine-tuned {tuned[name]:.4f}  delta {tuned[name] - base[name]:+.4f}")


if __name__ == "__main__":
    main()
