"""`embedops demo` end to end with the real MiniLM, checked in the registry, MLflow and the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from registry.ledger import Ledger

pytestmark = [pytest.mark.slow, pytest.mark.integration]
NAME = "helpcenter-embedder"


def test_the_demo_runs_the_whole_lifecycle(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    # A tracking URI in the environment must not pull the demo out of its own home.
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'elsewhere.db'}"}
    out = subprocess.run(
        [sys.executable, "-m", "embedops", "demo", "--home", str(home), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout)
    assert result["ok"] and len(result["steps"]) == 7 and not (tmp_path / "elsewhere.db").exists()

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tags = {str(v.version): v.tags for v in client.search_model_versions(f"name='{NAME}'")}
    assert sorted(tags) == ["1", "2", "3", "4"]
    assert tags["1"]["base_model"] == "all-MiniLM-L6-v2"
    assert [tags[v].get("gate_verdict") for v in "234"] == ["pass", "reject", "pass"]
    aliases = {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()}
    assert aliases == {"production": "2", "previous": "1"}  # v4 was promoted (no candidate), then rolled back from

    # Step 3's candidate is much worse; step 6's gate saw the retrained model win on the payroll questions.
    decisions = {tags[v]["gate_decision_run_id"]: v for v in "234"}
    ndcg = {v: client.get_run(r).data.metrics for r, v in decisions.items()}
    assert ndcg["3"]["candidate_ndcg_at_10"] < ndcg["3"]["production_ndcg_at_10"] - 0.1
    assert ndcg["2"]["candidate_ndcg_at_10"] > ndcg["2"]["production_ndcg_at_10"] + 0.1

    # Two drift runs: the quiet week below the threshold, the launch week above it and the cause of v4.
    monitoring = client.get_experiment_by_name("monitoring")
    drift_runs = client.search_runs([monitoring.experiment_id], order_by=["attributes.start_time ASC"])
    assert [(r.data.metrics["drifted"], r.data.tags["trigger_action"]) for r in drift_runs] == [
        (0.0, "none"),
        (1.0, "retrain"),
    ]
    assert drift_runs[0].data.metrics["drift_auc"] < 0.55 <= drift_runs[1].data.metrics["drift_auc"]
    retrained = client.get_model_version(NAME, "4")
    assert client.get_run(retrained.run_id).data.tags["retrain_trigger_run_id"] == drift_runs[1].info.run_id

    moves = [
        (m.action, m.from_version, m.to_version, m.outcome)
        for m in Ledger(f"sqlite:///{home / 'ledger.db'}").history(NAME)
    ]
    assert moves == [
        ("promote", None, "1", "success"),
        ("promote", "1", "2", "success"),
        ("promote", "2", "3", "rejected"),
        ("candidate", None, "4", "success"),
        ("retrain", "2", "4", "success"),
        ("promote", "2", "4", "success"),
        ("promote", "4", None, "success"),
        ("rollback", "4", "2", "success"),
    ]
    reports = [s["report"] for s in result["steps"] if s["report"]] + [result["retrain_report"]]
    assert len(reports) == 5 and all(Path(r).read_text().lstrip().lower().startswith("<!doctype html") for r in reports)
