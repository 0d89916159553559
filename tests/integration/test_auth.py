"""Authenticated promotion behind `mlflow server --app-name basic-auth`.

A release manager (rita, who created the registered model, so MLflow made her its manager) and a
trainer (tom, READ on it: the server's default). The ledger records who MLflow authenticated;
embedops refuses exactly what MLflow's own permissions refuse, and follows when an admin changes
a grant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedops.cli import app
from registry.ledger import Ledger
from tests.conftest import free_port, start_mlflow_server, stop_server, train_argv

pytestmark = [pytest.mark.slow]
ADMIN, RITA, TOM = ("admin", "admin-password-0"), ("rita", "rita-password-1"), ("tom", "tom-password-22")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server with MLflow's basic-auth app, on sqlite, artifacts proxied."""
    state = tmp_path_factory.mktemp("auth-server")
    (state / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{state / 'auth.db'}\nadmin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\nauth_cache_ttl_seconds = 60\n"
    )
    port = free_port()
    env = os.environ | {
        "MLFLOW_AUTH_CONFIG_PATH": str(state / "auth.ini"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "embedops-test-only",
    }
    server = start_mlflow_server(state, port, "--app-name", "basic-auth", env=env)
    yield f"http://127.0.0.1:{port}"
    stop_server(server)


def act_as(monkeypatch: pytest.MonkeyPatch, uri: str, who: tuple[str, str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", who[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", who[1])


def cli(*args: str) -> tuple[int, str]:
    """Exit code and what was printed; with --json, only stdout (the one JSON object)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout if "--json" in args and result.exit_code == 0 else result.output


def test_identity_and_permissions_come_from_mlflow(
    auth_server: str,
    tiny_model: Path,
    pairs_file: Path,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient
    from mlflow.tracking import MlflowClient

    name = unique_name
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("EMBEDOPS_LEDGER_URL", ledger_url)
    monkeypatch.setenv("EMBEDOPS_ACTOR", "somebody-else")  # ignored: the server says who is acting
    act_as(monkeypatch, auth_server, ADMIN)
    admin = AuthServiceClient(auth_server)
    for user, password in (RITA, TOM):
        admin.create_user(user, password)

    act_as(monkeypatch, auth_server, RITA)  # creating the model makes her its MANAGE-r
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial")[0] == 0

    act_as(monkeypatch, auth_server, TOM)
    code, out = cli(*train_argv(pairs_file, tiny_model, name, "--max-steps", "1"))
    assert code == 1 and "MLflow grants 'tom' READ" in out and "--no-register" in out
    code, out = cli(*train_argv(pairs_file, tiny_model, name, "--max-steps", "1", "--no-register", "--json"))
    assert code == 0, out
    run_id = json.loads(out)["run_id"]

    act_as(monkeypatch, auth_server, RITA)  # registers what the trainer trained
    code, out = cli("register", f"runs:/{run_id}/model", "--name", name, "--json")
    assert code == 0, out
    assert json.loads(out)["version"] == "2"
    assert MlflowClient().get_model_version(name, "2").tags["source_run_id"] == run_id

    act_as(monkeypatch, auth_server, TOM)
    code, out = cli("promote", name, "--version", "2", "--skip-gate", "--reason", "looks fine to me")
    assert code == 1 and "MLflow grants 'tom' READ" in out
    with pytest.raises(MlflowException) as refused:  # MLflow itself says the same to tom
        MlflowClient().set_registered_model_alias(name, "production", "2")
    assert refused.value.error_code == "PERMISSION_DENIED"
    code, out = cli("promote", name, "--version", "2", "--skip-gate", "--reason", "x", "--actor", "rita")
    assert code == 1 and "authenticated you as 'tom'" in out

    act_as(monkeypatch, auth_server, RITA)
    code, out = cli("promote", name, "--version", "2", "--skip-gate", "--reason", "reviewed the run", "--json")
    assert code == 0, out
    assert MlflowClient().get_registered_model(name).aliases["production"] == "2"

    act_as(monkeypatch, auth_server, ADMIN)  # an admin makes tom a release manager in MLflow ...
    admin.grant_user_permission(TOM[0], "registered_model", name, "EDIT")
    act_as(monkeypatch, auth_server, TOM)  # ... and embedops follows
    code, out = cli("rollback", name, "--reason", "tom on call now")
    assert code == 0, out
    monkeypatch.setenv("EMBEDOPS_RELEASE_MANAGERS", "rita")  # the policy's list can only narrow MLflow's grants
    code, out = cli("promote", name, "--version", "2", "--skip-gate", "--reason", "again")
    assert code == 1 and "release managers are rita" in out

    moves = [(m.actor, m.action, m.outcome, m.to_version) for m in Ledger(ledger_url).history(name)]
    assert moves == [
        ("rita", "promote", "success", "1"),
        ("rita", "promote", "success", "2"),
        ("tom", "rollback", "success", "1"),
    ]

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    code, out = cli("history", name)
    assert code == 1 and "rejected the credentials of 'tom'" in out
