"""The `embedops` command as a user meets it: help, --json, exit codes and one-line errors."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from tests.conftest import REPO, run_embedops, train_argv

runner = CliRunner()


def versions(name: str) -> list:
    return MlflowClient().search_model_versions(f"name='{name}'")


def test_help_lists_the_commands_and_train_flags() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "train" in result.stdout and "demo" in result.stdout
    train_help = runner.invoke(app, ["train", "--help"]).stdout
    for flag in (
        "--config",
        "--data",
        "--data-split",
        "--golden",
        "--golden-split",
        "--loss",
        "--epochs",
        "--max-steps",
        "--batch-size",
        "--learning-rate",
        "--base-model",
        "--name",
        "--json",
    ):
        assert flag in train_help, flag


def test_train_json_prints_one_json_object(store, tiny_model: Path, pairs_file: Path, unique_name: str) -> None:
    result = runner.invoke(
        app, train_argv(pairs_file, tiny_model, unique_name, "--batch-size", "8", "--max-steps", "2", "--json")
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)  # the trainer's own log lines went to stderr
    assert payload["model_name"] == unique_name and payload["version"] == "1"
    assert payload["run_id"] and payload["model_uri"] == f"models:/{unique_name}/1"
    assert payload["metrics"] == {} and payload["train"]["train_steps"] == 2


def test_train_summary_says_where_to_look(store, tiny_model: Path, pairs_file: Path, unique_name: str) -> None:
    result = runner.invoke(
        app, train_argv(pairs_file, tiny_model, unique_name, "--batch-size", "8", "--max-steps", "1")
    )
    assert result.exit_code == 0, result.stderr
    assert f"models:/{unique_name}/1" in result.stdout and "mlflow ui --backend-store-uri" in result.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--learning-rate", "-1"], "learning_rate: Input should be greater than 0"),
        (["--epochs", "0"], "epochs: Input should be greater than 0"),
        (["--name", "../escape"], "model name '../escape' may use only"),
        (["--name", "a/b"], "model name 'a/b' may use only"),
        (["--batch-size", "64"], "fewer than one batch of 64"),
        (["--base-model", "/nonexistent/model"], "model folder not found"),
        (["--loss", "triplet"], "needs a 'negative' column"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_registers_nothing(
    store, tiny_model: Path, pairs_file: Path, unique_name: str, extra: list, message: str
) -> None:
    result = runner.invoke(
        app, train_argv(pairs_file, tiny_model, unique_name, "--batch-size", "8", "--max-steps", "1", *extra)
    )
    assert result.exit_code == 1
    # Phase lines ("[   0.1s] opening the store ...") may come first; the error is one line, the last.
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if not re.match(r"^\[\s*\d+\.\d+s\] ", line)] == [lines[-1]]
    assert lines[-1].startswith("error: ") and message in lines[-1] and "Traceback" not in result.stderr
    assert versions(unique_name) == [] and versions("a") == []


def test_config_file_with_unknown_keys(store, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("data: pairs.jsonl\nlearning_rat: 0.1\n")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 1 and "learning_rat: unknown setting" in result.stderr


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["train", "--no-such-flag"]).exit_code == 2
    assert runner.invoke(app, ["train", "--epochs", "many"]).exit_code == 2


def test_debug_shows_the_traceback(store, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "missing.jsonl"), "--debug"])
    assert result.exit_code == 1 and "file or folder not found" in str(result.exception)


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    """The real entry point, no test harness: exit status and stderr as a scheduler sees them."""
    env = {"EMBEDOPS_HOME": str(tmp_path / "home"), "PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    out = run_embedops("train", "--data", str(tmp_path / "nope.jsonl"), env=env, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("error: file ") and out.stdout == ""


def test_a_dead_tracking_server_stops_a_job_before_it_starts(store, pairs_file, monkeypatch) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    result = CliRunner().invoke(app, ["train", "--data", str(pairs_file), "--max-steps", "1", "--json"])
    assert result.exit_code == 1 and result.stdout == ""
    assert f"the MLflow tracking server at http://127.0.0.1:{port} did not answer 3 health checks" in result.stderr
    assert "Nothing was started" in result.stderr


def test_a_new_embedded_store_uses_write_ahead_logging(tmp_path, monkeypatch) -> None:
    import sqlite3

    from embedops.core.settings import create_store_once, load_settings

    monkeypatch.setenv("EMBEDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = load_settings()
    settings.home.mkdir()
    create_store_once(settings)
    with sqlite3.connect(settings.home / "mlflow.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("argv", "typo"),
    [
        (["evaluate", "--model", "m", "--golden", "g", "--precision", "bf61"], "bf61"),
        (["train", "--precision", "fp23"], "fp23"),
        (["train", "--loss", "contrastiv"], "contrastiv"),
        (["tune", "--loss", "triplets"], "triplets"),
    ],
)
def test_a_typo_in_a_choice_is_a_usage_error_naming_the_choices(argv: list[str], typo: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output  # refused by the parser: nothing loaded, nothing logged
    shown = " ".join(result.stderr.replace("│", " ").split())  # the usage box wraps lines
    assert f"'{typo}' is not one of" in shown
    assert ("fp32, bf16" in shown) or ("contrastive, cached_contrastive, gist, triplet" in shown)


def test_version_flag() -> None:
    from embedops import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"embedops {__version__}"


def test_not_found_names_the_store_and_a_breaker_reset_needs_a_real_model(store) -> None:
    result = runner.invoke(app, ["models", "no-such-model"])
    assert result.exit_code == 1 and f"in sqlite:///{store.home / 'mlflow.db'}" in result.stderr
    result = runner.invoke(app, ["retrain", "--reset-breaker", "no-such-model"])
    assert result.exit_code == 1 and "no registered model named 'no-such-model'" in result.stderr
    assert "reset" not in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["promote", "no-such-model", "--version", "2"],
        ["rollback", "no-such-model", "--reason", "x"],
        ["drift", "no-such-model", "--current", str(REPO / "examples" / "traffic" / "reference.jsonl")],
        ["status", "no-such-model"],
    ],
)
def test_every_not_found_names_the_store_it_looked_in(store, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert f"no registered model named 'no-such-model' in sqlite:///{store.home}" in result.stderr


def test_a_breaker_reset_is_said_in_words_and_recorded(store, tiny_model: Path, unique_name: str) -> None:
    assert runner.invoke(app, ["register", str(tiny_model), "--name", unique_name]).exit_code == 0
    result = runner.invoke(app, ["retrain", "--reset-breaker", unique_name])  # the terminal form, not --json
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"circuit breaker of {unique_name} reset"
    result = runner.invoke(app, ["history", unique_name, "--json"])
    assert [(m["action"], m["reason"]) for m in json.loads(result.stdout)["moves"]] == [
        ("breaker", "circuit breaker reset")
    ]
