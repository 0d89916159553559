"""Optuna studies with the tiny model: nested runs, pruning, the best version, workers sharing a study;
on the embedded stack (sqlite) and the server stack (PostgreSQL + mlflow server)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from registry.ledger import Ledger
from registry.store import alias_version
from tests.conftest import HELPCENTER, run_embedops, start_embedops
from training.tune import run_study
from training.tune_config import load_tune_config

pytestmark = [pytest.mark.slow]


def tiny_training(tiny_model: Path, pairs_file: Path, name: str) -> dict:
    """The training settings every trial here starts from: the tiny model, scored on the help center's dev split."""
    return {
        "data": str(pairs_file),
        "golden": str(HELPCENTER),
        "golden_split": "dev",
        "base_model": str(tiny_model),
        "batch_size": 8,
        "model_name": name,
    }


def test_a_study_nests_its_trials_prunes_and_registers_the_best(
    stack, tiny_model: Path, pairs_file: Path, unique_name: str
) -> None:
    # A grid of four: two-epoch trials report after epoch one and the threshold prunes them
    # (a random tiny model never reaches nDCG 1.0); one-epoch trials have nothing to report early.
    cfg = load_tune_config(
        None,
        tiny_training(tiny_model, pairs_file, unique_name),
        search_space={
            "epochs": {"type": "categorical", "choices": [1, 2]},
            "learning_rate": {"type": "categorical", "choices": [1e-5, 1e-3]},
        },
        sampler={"type": "grid"},
        pruner={"type": "threshold", "lower": 1.0},
        n_trials=4,
        study=unique_name,
        storage=stack.optuna_url,
    )
    ledger = Ledger(stack.ledger_url)
    result = run_study(
        cfg,
        home=stack.settings.home,
        artifact_root=stack.settings.artifact_root,
        register=True,
        ledger=ledger,
        notify=lambda _: None,
    )

    assert result.trials["complete"] == 2 and result.trials["pruned"] == 2
    study = optuna.load_study(study_name=unique_name, storage=stack.optuna_url)
    states = {t.number: (t.params["epochs"], t.state.name) for t in study.trials}
    assert all(state == ("PRUNED" if epochs == 2 else "COMPLETE") for epochs, state in states.values())
    # The pruner compares trials epoch by epoch (batch sizes, and so step counts, differ between trials).
    assert all(t.intermediate_values.keys() == {1} for t in study.trials if t.state.name == "PRUNED")

    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == 4 and parent.info.status == "FINISHED"
    by_state = sorted((c.data.tags["optuna.trial_state"], c.info.status) for c in children)
    assert by_state == [("COMPLETE", "FINISHED")] * 2 + [("PRUNED", "KILLED")] * 2
    # A pruned trial's run shows the intermediate dev score it was stopped on, at the step it was taken.
    pruned = [c for c in children if c.data.tags["optuna.trial_state"] == "PRUNED"]
    for child in pruned:
        (point,) = client.get_metric_history(child.info.run_id, "dev_ndcg_at_10")
        assert 0 < point.step < 10 and point.value < 1.0
    assert parent.data.tags["best_trial"] == str(result.best_trial)
    assert parent.data.metrics["best_ndcg_at_10"] == pytest.approx(result.best_value)

    version = result.version
    assert version == "1" and alias_version(unique_name, "candidate") == "1"
    tags = client.get_model_version(unique_name, version).tags
    assert tags["tuning_study"] == unique_name and tags["embedding_dim"] == "32" and "tokenizer_sha256" in tags
    best_run = client.get_run(tags["run_id"])
    assert best_run.data.tags["optuna.trial_number"] == str(result.best_trial)
    (move,) = ledger.history(unique_name)
    assert (move.action, move.to_version, move.outcome) == ("candidate", "1", "success")


def test_two_workers_share_one_study_without_repeating_a_trial(
    stack, tiny_model: Path, pairs_file: Path, tmp_path: Path, unique_name: str
) -> None:
    storage = stack.optuna_url
    config = tmp_path / "tune.yaml"
    config.write_text(
        json.dumps(
            {
                "train": {
                    "data": str(pairs_file),
                    "golden": str(HELPCENTER),
                    "golden_split": "dev",
                    "base_model": str(tiny_model),
                    "batch_size": 8,
                    "max_steps": 2,
                    "model_name": unique_name,
                },
                "search_space": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}},
                "sampler": {"type": "random"},
                "study": unique_name,
                "storage": storage,
                "n_trials": 3,
            }
        )
    )
    env = stack.env
    workers = [start_embedops("tune", "--config", str(config), "--json", env=env) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-2000:] for _, err in outputs]

    trials = optuna.load_study(study_name=unique_name, storage=storage).trials
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state.name == "COMPLETE" for t in trials)
    # One parent run for the study, though both workers started it at the same moment.
    parents = MlflowClient().search_runs(
        [e.experiment_id for e in MlflowClient().search_experiments()],
        filter_string=f"tags.`optuna.study` = '{unique_name}' and tags.`embedops.job` = 'tune'",
    )
    assert len(parents) == 1
    # Both workers end by registering the study's best: it becomes one version, not two.
    versions = {json.loads(out)["version"] for out, _ in outputs}
    assert versions == {"1"} and len(MlflowClient().search_model_versions(f"name='{unique_name}'")) == 1

    # Resuming the study adds trials after the finished ones and repeats none.
    config.write_text(config.read_text().replace('"n_trials": 3', '"n_trials": 1'))
    again = run_embedops("tune", "--config", str(config), "--json", env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(t.number for t in optuna.load_study(study_name=unique_name, storage=storage).trials) == list(range(7))


def test_enqueued_trials_run_first_and_the_study_reports_its_cpu_time(
    store, tiny_model: Path, pairs_file: Path, tmp_path: Path, unique_name: str
) -> None:
    recipe = {"learning_rate": 3e-5, "hard_negatives": True, "num_negatives": 2, "negatives_margin": 0.0}
    cfg = load_tune_config(
        None,
        tiny_training(tiny_model, pairs_file, unique_name) | {"max_steps": 2},
        search_space={
            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
            "hard_negatives": {"type": "categorical", "choices": [True, False]},
            "num_negatives": {"type": "int", "low": 1, "high": 2},
            "negatives_margin": {"type": "categorical", "choices": [0.0]},  # the random tiny model needs 0
        },
        enqueue=[recipe],
        n_trials=2,
        study=unique_name,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
    )
    where = {"home": store.home, "artifact_root": store.artifact_root, "ledger": Ledger(store.ledger_url)}
    where |= {"register": False, "notify": lambda _: None, "negatives_cache": tmp_path / "negatives"}
    result = run_study(cfg, **where)
    study = optuna.load_study(study_name=unique_name, storage=cfg.storage)
    assert study.trials[0].params == recipe and result.trials["complete"] == 2
    assert result.cpu_seconds > 0 and result.seconds > 0
    parent = MlflowClient().get_run(result.parent_run_id).data.metrics
    assert parent["worker_cpu_seconds"] == pytest.approx(result.cpu_seconds)
    trial_zero = MlflowClient().get_run(study.trials[0].user_attrs["mlflow_run_id"]).data.metrics
    assert trial_zero["negatives_negatives"] == 2 * trial_zero["negatives_rows"] > 0

    # Resumed with a longer queue: what the study already tried is not queued again, the new recipe is.
    second = {"learning_rate": 1e-4, "hard_negatives": False}
    resumed = cfg.model_copy(update={"enqueue": [recipe, second], "n_trials": 1})
    run_study(resumed, **where)
    params = [t.params for t in optuna.load_study(study_name=unique_name, storage=cfg.storage).trials]
    assert len(params) == 3 and params[2] == second and params.count(recipe) == 1
