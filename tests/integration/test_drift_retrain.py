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
from tests.conftest import HELPCENTER, read_jsonl, train_argv

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


def retrain_config(folder: Path, name: str) -> Path:
    """A retrain of ``name``: two tiny-model steps on the help-center pairs, a gate any candidate passes."""
    (folder / "policy.yaml").write_text("min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: null\n")
    path = folder / "retrain.yaml"
    path.write_text(
        f"model_name: {name}\ntrain: {{data: {HELPCENTER / 'train_pairs.jsonl'}, max_steps: 2, batch_size: 8}}\n"
        f"golden: {HELPCENTER}\npolicy: policy.yaml\nauto_promote: false\n"
    )
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
    retrain_yaml = retrain_config(tmp_path, name)
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
        str(retrain_yaml),
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
    drift_run = client.get_run(result["run_id"])
    assert drift_run.data.tags["trigger_action"] == "retrain"
    # The window's own dates: params, and the time its metrics are plotted at.
    assert drift_run.data.params["window_end"] == result["window"]["end"] == "2026-11-20T10:00:00+00:00"
    (point,) = client.get_metric_history(result["run_id"], "drift_auc")
    assert point.timestamp == 1_795_168_800_000  # 2026-11-20T10:00:00Z in ms
    moves = Ledger(stack.ledger_url).history(name)
    candidate, chain = moves[-2], moves[-1]
    assert (candidate.action, candidate.to_version, candidate.outcome) == ("gate", "2", "success")
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
        *train_argv(HELPCENTER / "train_pairs.jsonl", tiny_model, name, "--max-steps", "1", "--batch-size", "8")
    )
    assert code == 0, err
    assert cli("promote", name, "--version", "2", "--skip-gate", "--reason", "trained")[0] == 0
    code, result, err = cli("drift", name, "--current", str(current), "--config", str(config))
    assert code == 4, err
    assert result["window"]["reference"] == 195 and result["trigger"]["action"] == "none"  # no retrain configured

    # A retrain that crashes: the drift result still comes back with the error, the lease is released
    # and the breaker counts it.
    def crash(_: dict) -> dict:
        raise RuntimeError("out of disk")

    ledger = Ledger(f"sqlite:///{store.home / 'ledger.db'}")
    trigger_store = TriggerStore(ledger)
    cfg = load_drift_config(config)
    questions = [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    reference = read_window(traffic(tmp_path / "ref.jsonl", questions))
    result = run_drift(
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
    assert result.drifted and result.trigger.action == "retrain" and result.retrain_error == "RuntimeError: out of disk"
    status = trigger_store.status(name)
    assert status["lease_holder"] is None and status["failures"] == 1 and not status["breaker_open"]


def test_a_scheduled_drift_job_whose_retrain_fails_says_so_and_retries_the_window_once_fixed(
    stack, tiny_model: Path, tmp_path: Path, unique_name: str
) -> None:
    """The cron job's view: the retrain's failure is in the JSON and the exit code, the ledger and
    `status` keep it, the breaker opens and is reset, and the same window retrains after the fix."""
    name = unique_name
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial")[0] == 0
    questions = [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    reference = traffic(tmp_path / "reference.jsonl", questions)
    rng = random.Random(2)
    current = traffic(tmp_path / "current.jsonl", [" ".join(rng.choices(BIO, k=6)) for _ in range(200)])
    (tmp_path / "drift.yaml").write_text(
        "report: never\ntrigger: {min_window: 100, consecutive: 1, high_threshold: 0.6, max_failures: 2}\n"
    )
    (tmp_path / "policy.yaml").write_text("min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: null\n")
    retrain_yaml = tmp_path / "retrain.yaml"

    def write_retrain(data: Path) -> None:
        retrain_yaml.write_text(
            f"model_name: {name}\ntrain: {{data: {data}, max_steps: 2, batch_size: 8}}\n"
            f"golden: {HELPCENTER}\npolicy: policy.yaml\n"
        )

    drift = (
        "drift", name, "--current", str(current), "--reference", str(reference),
        "--config", str(tmp_path / "drift.yaml"), "--retrain-config", str(retrain_yaml),
    )  # fmt: skip

    write_retrain(tmp_path / "no-such-pairs.jsonl")  # a typo in the data path
    for _ in range(2):
        code, result, err = cli(*drift)
        assert code == 5, err  # drift flagged, and the retrain it started failed
        assert result["drifted"] and result["trigger"]["action"] == "retrain" and result["retrain"] is None
        assert "no-such-pairs.jsonl" in result["retrain_error"] and result["score"] >= 0.6
        assert "retrain   FAILED" not in err  # --json: the object on stdout carries it
    failures = [m for m in Ledger(stack.ledger_url).history(name) if m.outcome == "failed" or m.action == "breaker"]
    assert [(m.action, m.outcome) for m in failures] == [
        ("retrain", "failed"),
        ("retrain", "failed"),
        ("breaker", "success"),
    ]
    assert "no-such-pairs.jsonl" in failures[0].detail and "opened after 2" in failures[-1].reason

    code, status, err = cli("status", name)
    assert code == 0, err
    (model,) = status["models"]
    assert model["retrain"]["breaker_open"] and model["retrain"]["failures"] == 2 and not model["retrain"]["running"]
    assert model["retrain"]["breaker_hint"] == f"embedops retrain --reset-breaker {name}"
    assert model["drift"]["action"] == "failed" and "no-such-pairs.jsonl" in model["drift"]["reason"]
    assert model["last_failure"]["action"] == "retrain" and "no-such-pairs.jsonl" in model["last_failure"]["detail"]
    code, history, _ = cli("history", name)
    assert code == 0 and [m["action"] for m in history["moves"]][-3:] == ["retrain", "retrain", "breaker"]

    # While the breaker is open the window is scored but nothing retrains; a person fixes and resets.
    code, result, _ = cli(*drift)
    assert code == 4 and result["trigger"]["action"] == "none" and "circuit breaker open" in result["trigger"]["reason"]
    write_retrain(HELPCENTER / "train_pairs.jsonl")
    assert cli("retrain", "--reset-breaker", name)[0] == 0

    # The same window, after the fix: it was never consumed, so it retrains now.
    code, result, err = cli(*drift)
    assert code == 4, err
    assert result["trigger"]["action"] == "retrain" and result["retrain_error"] is None
    assert result["retrain"]["version"] == "2" and result["retrain"]["verdict"] == "pass"
    code, status, _ = cli("status", name)
    (model,) = status["models"]
    assert not model["retrain"]["breaker_open"] and model["retrain"]["failures"] == 0
    assert (
        model["retrain"]["last_retrain_at"] and model["retrain"]["cooldown_until"] > model["retrain"]["last_retrain_at"]
    )
    assert {a["alias"]: a["version"] for a in model["aliases"]}["candidate"] == "2"
    assert [m.action for m in Ledger(stack.ledger_url).history(name)][-1] == "retrain"
