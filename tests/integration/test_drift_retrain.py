"""Drift to retrain to gate, end to end with the tiny model: the chain is in MLflow and the ledger."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from registry.ledger import Ledger
from registry.store import alias_version
from tests.conftest import HELPCENTER, read_jsonl

pytestmark = [pytest.mark.slow]
runner = CliRunner()
# A domain the help center never talks about: lab biology.
BIO = (
    "protein kinase receptor mutation cell tumour mice gene expression assay antibody pathway enzyme "
    "inhibitor plasma neuron sequencing mitochondria cohort dosage"
).split()


def traffic(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "ts": "2026-11-20T10:00:00Z"}) + "\n" for t in texts))
    return path


def cli(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None, result.stderr


def test_a_drifted_window_retrains_gates_and_records_the_chain(
    stack, tiny_model: Path, tmp_path: Path, unique_name: str
) -> None:
    name = unique_name
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial")[0] == 0

    questions = [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    titles = [d["title"] for d in read_jsonl(HELPCENTER / "corpus.jsonl")]
    reference = traffic(tmp_path / "reference.jsonl", questions + titles)
    rng = random.Random(0)
    drifted = traffic(
        tmp_path / "current.jsonl",
        [" ".join(rng.choices(BIO, k=rng.randint(4, 9))) for _ in range(150)] + questions[:150],
    )
    (tmp_path / "drift.yaml").write_text(
        "current_size: 300\nreference_size: 450\nreport: never\n"
        "trigger: {min_window: 100, consecutive: 2, high_threshold: 0.6, cooldown_hours: 24}\n"
    )
    (tmp_path / "policy.yaml").write_text("min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: null\n")
    (tmp_path / "retrain.yaml").write_text(
        f"model_name: {name}\ntrain: {{data: {HELPCENTER / 'train_pairs.jsonl'}, max_steps: 2, batch_size: 8}}\n"
        f"golden: {HELPCENTER}\npolicy: policy.yaml\nauto_promote: false\n"
    )
    args = (
        "drift",
        name,
        "--current",
        str(drifted),
        "--reference",
        str(reference),
        "--config",
        str(tmp_path / "drift.yaml"),
        "--retrain-config",
        str(tmp_path / "retrain.yaml"),
    )

    code, result, err = cli(*args)
    assert code == 4, err
    assert result["drifted"] and result["score"] >= 0.6 and result["trigger"]["action"] == "retrain"
    assert result["tokenizer"]["current"]["unknown_token_rate"] > result["tokenizer"]["reference"]["unknown_token_rate"]
    retrain = result["retrain"]
    assert retrain["version"] == "2" and retrain["verdict"] == "pass" and retrain["drift_run_id"] == result["run_id"]
    assert alias_version(name, "candidate") == "2" and alias_version(name, "production") == "1"  # auto_promote off

    client = MlflowClient()
    assert client.get_run(retrain["training_run_id"]).data.tags["retrain_trigger_run_id"] == result["run_id"]
    assert client.get_run(result["run_id"]).data.tags["trigger_action"] == "retrain"
    moves = Ledger(stack.ledger_url).history(name)
    candidate, chain = moves[-2], moves[-1]
    assert (candidate.action, candidate.to_version, candidate.outcome) == ("candidate", "2", "success")
    assert chain.action == "retrain"
    assert chain.decision_run_id == retrain["decision_run_id"] == candidate.decision_run_id
    assert result["run_id"] in chain.reason and retrain["training_run_id"] in chain.reason

    # The same window again: still drift, but never a second retrain.
    code, again, _ = cli(*args)
    assert code == 4 and again["trigger"]["action"] == "none" and "already handled" in again["trigger"]["reason"]
    assert again["retrain"] is None


def test_default_reference_and_a_crashing_retrain(store, tiny_model: Path, tmp_path: Path, unique_name: str) -> None:
    from monitoring.config import load_drift_config
    from monitoring.job import run_drift
    from monitoring.state import TriggerStore
    from monitoring.windows import read_window

    name = unique_name
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial")[0] == 0
    rng = random.Random(1)
    current = traffic(tmp_path / "current.jsonl", [" ".join(rng.choices(BIO, k=6)) for _ in range(200)])
    config = tmp_path / "drift.yaml"
    config.write_text("report: never\ntrigger: {min_window: 100, consecutive: 1, high_threshold: 0.6}\n")

    # A registered (untrained) production version has no training queries to compare with.
    code, _, err = cli("drift", name, "--current", str(current), "--config", str(config))
    assert code == 1 and "has no training data on record" in err

    # A trained one does: its training anchors are the default reference.
    code, _, err = cli(
        "train",
        "--data",
        str(HELPCENTER / "train_pairs.jsonl"),
        "--base-model",
        str(tiny_model),
        "--name",
        name,
        "--max-steps",
        "1",
        "--batch-size",
        "8",
    )
    assert code == 0, err
    assert cli("promote", name, "--version", "2", "--skip-gate", "--reason", "trained")[0] == 0
    code, result, err = cli("drift", name, "--current", str(current), "--config", str(config))
    assert code == 4, err
    assert result["window"]["reference"] == 195 and result["trigger"]["action"] == "none"  # no retrain configured

    # A retrain that crashes: the error surfaces, the lease is released and the breaker counts it.
    def crash(_: dict) -> dict:
        raise RuntimeError("out of disk")

    ledger = Ledger(f"sqlite:///{store.home / 'ledger.db'}")
    trigger_store = TriggerStore(ledger)
    cfg = load_drift_config(config)
    questions = [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    reference = read_window(traffic(tmp_path / "ref.jsonl", questions))
    with pytest.raises(RuntimeError, match="out of disk"):
        run_drift(
            name,
            reference,
            read_window(current),
            cfg,
            trigger_store=trigger_store,
            cache_dir=None,
            artifact_root=store.artifact_root,
            retrain=crash,
            progress=False,
        )
    status = trigger_store.status(name)
    assert status["lease_holder"] is None and status["failures"] == 1 and not status["breaker_open"]
