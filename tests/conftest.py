"""Shared fixtures: a tiny random model, a real MLflow store in a temporary home, small data."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from embedops.core.settings import apply_offline_env

apply_offline_env()

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HELPCENTER = EXAMPLES / "helpcenter"
SHARED_DATA = REPO.parent / "shared" / "data"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def train_argv(data: Path, base_model: Path, name: str, *flags: str) -> list[str]:
    """`embedops train` arguments: these pairs, this base model, this model name, then ``flags``."""
    return ["train", "--data", str(data), "--base-model", str(base_model), "--name", name, *flags]


def run_python(
    *args: str, env: Mapping[str, str], cwd: Path = REPO, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python ARGS` as a process of its own (this interpreter): exit status, stdout and stderr as text."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_embedops(
    *args: str, env: Mapping[str, str], cwd: Path = REPO, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`embedops ARGS` run as a user's shell runs it, to the end: see :func:`run_python`."""
    return run_python("-m", "embedops", *args, env=env, cwd=cwd, timeout=timeout)


def start_embedops(*args: str, env: Mapping[str, str], cwd: Path = REPO, **popen: Any) -> subprocess.Popen:
    """`embedops ARGS` started in the background; stdout and stderr are text pipes unless ``popen`` says otherwise."""
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True} | popen
    return subprocess.Popen([sys.executable, "-m", "embedops", *args], cwd=cwd, env=env, **streams)


def ledger_moves(ledger_url: str, name: str) -> list[tuple[str, str | None, str | None, str]]:
    """A model's alias moves as its ledger records them, oldest first: (action, from, to, outcome)."""
    from registry.ledger import Ledger

    return [(m.action, m.from_version, m.to_version, m.outcome) for m in Ledger(ledger_url).history(name)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 32-dim BERT whose vocabulary covers the help-center words."""
    from tests.tiny_model import build_tiny_model

    texts = [d["title"] + " " + d["text"] for d in read_jsonl(HELPCENTER / "corpus.jsonl")]
    texts += [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), texts)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One embedded MLflow store (sqlite + local artifacts) for the session; tests use their own names."""
    home = tmp_path_factory.mktemp("embedops-home")
    saved = {k: os.environ.get(k) for k in ("EMBEDOPS_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["EMBEDOPS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from embedops.core.settings import configure

    yield configure()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@dataclass(frozen=True)
class Stack:
    """Where a test's state lives: the embedded default, or the team's PostgreSQL + mlflow server."""

    name: str
    settings: Any  # embedops.core.settings.Settings, pointed at this stack
    env: dict[str, str]  # the environment a subprocess needs to use the same stack
    ledger_url: str
    optuna_url: str


@pytest.fixture(params=["embedded", "server"])
def stack(request: pytest.FixtureRequest, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """One suite over both stacks, the way Optuna runs its tests over every storage. The server
    stack is what `.ci/services start` runs; elsewhere its half of the suite skips, saying why."""
    from embedops.core.settings import configure

    if request.param == "server":
        uri, pg = os.environ.get("EMBEDOPS_TEST_MLFLOW_URI"), os.environ.get("EMBEDOPS_TEST_PG_URL")
        if not (uri and pg):
            pytest.skip("no PostgreSQL + mlflow server: .ci/run starts them (source .ci/services start)")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("EMBEDOPS_LEDGER_URL", f"{pg}/ledger")
        optuna_url = f"{pg}/optuna"
    else:
        optuna_url = f"sqlite:///{tmp_path / 'optuna.db'}"
    settings = configure()
    yield Stack(request.param, settings, dict(os.environ), settings.ledger_url, optuna_url)
    monkeypatch.undo()
    configure()  # back to the session's embedded store


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    """40 help-center training pairs: enough for a few tiny-model steps."""
    return write_jsonl(tmp_path / "pairs.jsonl", read_jsonl(HELPCENTER / "train_pairs.jsonl")[:40])


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name of this test's own, so tests sharing a store never collide."""
    import re
    import uuid

    # The random tail keeps reruns apart on a long-lived server (the server stack outlives a test run).
    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:52].strip("-") + "-" + uuid.uuid4().hex[:6]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url: str, process: Any, *, what: str, log: Callable[[], str], limit_s: float = 180) -> None:
    """Poll ``url`` until it answers; fail with the process's log if it dies or never answers."""
    import time
    import urllib.request

    started = time.monotonic()
    while True:
        assert process.poll() is None, log()[-3000:]
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert time.monotonic() - started < limit_s, f"{what} did not come up in {limit_s:.0f} s"
            time.sleep(1)


def start_mlflow_server(state: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> Any:
    """A real `mlflow server` on loopback: sqlite store and proxied artifacts under ``state``, log
    appended to ``state/server.log`` (a restart on the same state continues it). Returns once it answers.

    It runs in a session of its own: `mlflow server` starts uvicorn as a child, so only
    :func:`stop_server` (the whole process group) really stops it. MLflow's job runner (eight
    GenAI worker processes that embedops never uses) stays off.
    """
    state.mkdir(parents=True, exist_ok=True)
    log = state / "server.log"
    with open(log, "a") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                *extra,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{state / 'mlflow.db'}",
                "--artifacts-destination",
                str(state / "artifacts"),
                "--workers",
                "1",
            ],
            env=(env or dict(os.environ)) | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/health", server, what="mlflow server", log=log.read_text)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Any, *, kill: bool = False) -> None:
    """Stop a server started in its own session, children included (``kill``: SIGKILL, as a crash would)."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL if kill else signal.SIGTERM)
    server.wait(timeout=60)
