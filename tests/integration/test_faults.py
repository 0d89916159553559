"""Faults of the team stack: the database restarts between two commands; the tracking server dies mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, run_embedops, start_embedops, start_mlflow_server, stop_server, train_argv

pytestmark = [pytest.mark.slow]


def test_the_next_command_works_after_postgresql_restarts(stack, tiny_model: Path, unique_name: str) -> None:
    if stack.name != "server":
        pytest.skip("a PostgreSQL restart is a fault of the server stack")

    def embedops(*args: str) -> dict:
        out = run_embedops(*args, "--json", env=stack.env)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    assert embedops("register", str(tiny_model), "--name", unique_name)["version"] == "1"
    restart = subprocess.run(
        [str(REPO / ".ci" / "services"), "pg-restart"], capture_output=True, text=True, timeout=120
    )
    assert restart.returncode == 0, restart.stderr
    # The tracking server's pooled connections died with the database; the ledger's too.
    assert embedops("promote", unique_name, "--version", "1", "--initial")["production"] == "1"
    assert [v["aliases"] for v in embedops("models", unique_name)["versions"]] == [["production"]]
    assert [m["action"] for m in embedops("history", unique_name)["moves"]] == ["promote"]


def test_a_tracking_server_dying_mid_run_fails_the_run_and_registers_nothing(
    tiny_model: Path, pairs_file: Path, unique_name: str, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    port = free_port()
    uri, state = f"http://127.0.0.1:{port}", tmp_path / "server"
    server = start_mlflow_server(state, port)
    env = os.environ | {
        "MLFLOW_TRACKING_URI": uri,
        "EMBEDOPS_HOME": str(tmp_path / "home"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "EMBEDOPS_TRACKING_GRACE_S": "120",
    }
    log = tmp_path / "train.err"
    with open(log, "w") as err:
        job = start_embedops(
            *train_argv(pairs_file, tiny_model, unique_name, "--max-steps", "100000", "--batch-size", "8"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

    def wait_for(done: Callable[[], bool], what: str) -> None:
        started = time.monotonic()
        while not done():
            assert time.monotonic() - started < 240, f"waited in vain for {what}: {log.read_text()[-3000:]}"
            time.sleep(0.5)

    try:
        client = MlflowClient(uri)
        experiments = lambda: [e.experiment_id for e in client.search_experiments()]  # noqa: E731
        wait_for(
            lambda: job.poll() is None and bool(client.search_runs(experiments(), "metrics.loss > 0")),
            "training to log a loss",
        )
        stop_server(server, kill=True)  # the tracking server dies in the middle of training
        # The job notices, stops training, and waits for the server to record the failure ...
        wait_for(lambda: "the tracking server is not answering" in log.read_text(), "the job to notice")
        server = start_mlflow_server(state, port)  # ... which it does once the server is back
        assert job.wait(timeout=300) == 1, log.read_text()[-3000:]
        err_text = log.read_text()
        assert "stopped answering during run" in err_text and "nothing was registered" in err_text
        runs = client.search_runs(experiments())
        assert [r.info.status for r in runs] == ["FAILED"]
        assert client.search_model_versions(f"name = '{unique_name}'") == []
    finally:
        job.kill()
        stop_server(server)
