"""Every MLproject entry point, run the way a user runs it: `mlflow run . -e NAME --env-manager local`.

One sequence on one store with the tiny model: train -> evaluate -> promote (gate) -> rollback ->
drift -> retrain -> promote the candidate by alias. Each step is checked in the registry, the ledger
and MLflow's own record of the project run, not in printed text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import EXAMPLES, HELPCENTER, REPO, ledger_moves, run_python, write_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.integration]
NAME = "mlproject-model"


def test_every_entry_point_runs_under_mlflow_run(tmp_path: Path, tiny_model: Path) -> None:
    home = tmp_path / "home"
    env = os.environ | {
        "EMBEDOPS_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        out = run_python(*args, env=env)
        assert out.returncode == expect, f"{args}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        return out

    def mlflow_run(entry: str, **params: str) -> None:
        flags = [arg for key, value in params.items() for arg in ("-P", f"{key}={value}")]
        run("-m", "mlflow", "run", ".", "-e", entry, "--env-manager", "local", *flags)

    # A vanishing learning rate: trained versions score exactly like the tiny model, so a gate that
    # asks for "no worse" (min_delta 0, no test) passes deterministically. Gate quality is tested elsewhere.
    (tmp_path / "train.yaml").write_text(
        f"data: {HELPCENTER / 'train_pairs.jsonl'}\nbase_model: {tiny_model}\nmax_steps: 2\nbatch_size: 8\n"
        f"learning_rate: 1.0e-12\ngolden: {HELPCENTER}\nmodel_name: {NAME}\n"
    )
    (tmp_path / "policy.yaml").write_text("min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: null\n")
    (tmp_path / "drift.yaml").write_text(
        "current_size: 200\nreference_size: 200\nreport: never\ntrigger: {min_window: 100}\n"
    )
    (tmp_path / "retrain.yaml").write_text(
        f"model_name: {NAME}\ntrain: {{data: {HELPCENTER / 'train_pairs.jsonl'}, max_steps: 2, batch_size: 8, "
        "learning_rate: 1.0e-12}\n"
        f"golden: {HELPCENTER}\npolicy: policy.yaml\n"
    )

    # v1 is the tiny model as it is, put in production by hand; v2 comes from the train entry point.
    run("-m", "embedops", "register", str(tiny_model), "--name", NAME, "--golden", str(HELPCENTER))
    run("-m", "embedops", "promote", NAME, "--version", "1", "--initial")
    mlflow_run("corpus_add", corpus="hc", path=str(HELPCENTER))
    mlflow_run("index_build", name=NAME, corpus="hc")  # production v1's index: every promotion now builds one
    mlflow_run("train", config=str(tmp_path / "train.yaml"))
    mlflow_run("evaluate", model=f"models:/{NAME}@production", golden=str(HELPCENTER))
    mlflow_run("promote", name=NAME, version="2", policy=str(tmp_path / "policy.yaml"), golden=str(HELPCENTER))
    mlflow_run("rollback", name=NAME, reason="entry point test")
    changes = write_jsonl(
        tmp_path / "changes.jsonl", [{"_id": "new", "text": "Pause a payroll run", "ts": "2026-12-01T09:00:00Z"}]
    )
    mlflow_run("corpus_update", corpus="hc", changes=str(changes))
    mlflow_run("index_sync", name=NAME, corpus="hc")
    mlflow_run("search", name=NAME, query="pause payroll", corpus="hc", k="3")
    mlflow_run(
        "compare", name=NAME, a="production", b="2", policy=str(tmp_path / "policy.yaml"), golden=str(HELPCENTER)
    )
    mlflow_run("status", name=NAME)
    mlflow_run(
        "drift",
        name=NAME,
        config=str(tmp_path / "drift.yaml"),
        current=str(EXAMPLES / "traffic" / "live"),
        start="2026-11-16T00:00:00Z",
    )
    mlflow_run("retrain", config=str(tmp_path / "retrain.yaml"))
    mlflow_run("shadow", name=NAME, traffic=str(EXAMPLES / "traffic" / "live"), corpus="hc", sample="200")
    mlflow_run("traffic_purge", older_than="3650d")
    mlflow_run("promote", name=NAME, policy=str(tmp_path / "policy.yaml"), golden=str(HELPCENTER))  # candidate
    (tmp_path / "tune.yaml").write_text(
        f"train: {{data: {HELPCENTER / 'tune_pairs.jsonl'}, golden: {HELPCENTER}, golden_split: dev, "
        f"base_model: {tiny_model}, max_steps: 2, batch_size: 8, model_name: {NAME}}}\n"
    )
    mlflow_run("tune", config=str(tmp_path / "tune.yaml"), n_trials="2")  # registers v4 as the candidate

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], filter_string="tags.`mlflow.project.entryPoint` != ''"
    )
    by_entry = sorted((r.data.tags["mlflow.project.entryPoint"], r.info.status) for r in runs)
    assert by_entry == sorted(
        [
            (e, "FINISHED")
            for e in (
                "corpus_add",
                "index_build",
                "corpus_update",
                "index_sync",
                "search",
                "train",
                "evaluate",
                "promote",
                "rollback",
                "compare",
                "status",
                "drift",
                "retrain",
                "shadow",
                "traffic_purge",
                "promote",
                "tune",
            )
        ]
    )
    assert not list((REPO / "mlruns").glob("0/*")) or all(
        r.info.artifact_uri.startswith(home.as_uri()) for r in runs
    )  # nothing written outside the home

    versions = {str(v.version) for v in client.search_model_versions(f"name='{NAME}'")}
    assert sorted(versions) == ["1", "2", "3", "4"]
    assert str(client.get_model_version_by_alias(NAME, "production").version) == "3"
    evaluated = next(r for r in runs if r.data.tags["mlflow.project.entryPoint"] == "evaluate")
    assert "ndcg_at_10" in evaluated.data.metrics
    drifted = next(r for r in runs if r.data.tags["mlflow.project.entryPoint"] == "drift")
    assert "drift_auc" in drifted.data.metrics and drifted.data.tags["embedops.job"] == "drift"

    assert ledger_moves(f"sqlite:///{home / 'ledger.db'}", NAME) == [
        ("promote", None, "1", "success"),
        ("promote", "1", "2", "success"),
        ("rollback", "2", "1", "success"),
        ("gate", None, "3", "success"),  # the retrain gated v3: candidate, on record
        ("retrain", "1", "3", "success"),
        ("promote", "1", "3", "success"),
        ("promote", "3", None, "success"),  # the promoted candidate is no longer the candidate
        ("candidate", None, "4", "success"),
    ]
    tuned = next(r for r in runs if r.data.tags["mlflow.project.entryPoint"] == "tune")
    assert tuned.data.tags["embedops.job"] == "tune" and "best_ndcg_at_10" in tuned.data.metrics
