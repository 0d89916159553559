"""Who is acting and what MLflow lets them do, when the tracking server authenticates.

Behind ``mlflow server --app-name basic-auth`` the identity is the MLflow user the server
authenticated (``MLFLOW_TRACKING_USERNAME``), not a flag anyone can set, and what that user may do
to a registered model is MLflow's grant on it. MLflow grants per registered model, not per alias:
creating a version, setting ``candidate`` and setting ``production`` all need EDIT or MANAGE. So
embedops asks MLflow for the grant before any work starts and refuses what MLflow would refuse,
with a message that says who to ask; its own release-manager list can only narrow that further.

Everything here is a no-op on the embedded store or a server without authentication.
"""

from __future__ import annotations

import functools
from typing import Any

from embedops.core.errors import ServiceUnavailableError
from registry.moves import UPDATE_GRANTS, NotAuthorizedError

CURRENT_USER = "/api/2.0/mlflow/users/current"
USER_PERMISSION = "/api/3.0/mlflow/users/permissions/get"


def _username(tracking_uri: str) -> str | None:
    """The user MLflow's client logs in as (environment or ~/.mlflow/credentials), for an HTTP server."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    from mlflow.utils.credentials import read_mlflow_creds

    return read_mlflow_creds().username or None


def _get(tracking_uri: str, endpoint: str, params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """One GET with MLflow's own request helper (credentials and TLS settings from the environment);
    no retries: configure() has just seen the server answer /health."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(
            get_default_host_creds(tracking_uri), endpoint, "GET", params=params, max_retries=0, raise_on_status=False
        )
    except Exception as exc:  # connection refused and the like: configure() already checked /health
        raise ServiceUnavailableError(
            f"the MLflow tracking server at {tracking_uri} did not answer {endpoint}: {exc}"
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def authenticated_user(tracking_uri: str) -> str | None:
    """The MLflow user the server authenticated, or None where the server does not authenticate."""
    user = _username(tracking_uri)
    if user is None:
        return None
    from mlflow.utils.credentials import read_mlflow_creds

    return _ask_current_user(tracking_uri, user, read_mlflow_creds().password)


# One answer per process and credentials: a command both resolves its actor and checks its grant.
# A refusal raises, so it is never cached.
@functools.lru_cache(maxsize=8)
def _ask_current_user(tracking_uri: str, user: str, password: str | None) -> str | None:
    status, body = _get(tracking_uri, CURRENT_USER)
    if status in (401, 403):
        raise NotAuthorizedError(
            f"the tracking server at {tracking_uri} rejected the credentials of '{user}' "
            "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)"
        )
    if status == 404:
        return None  # a server without the basic-auth app: the username is not checked by anyone
    if status != 200 or "user" not in body:
        raise ServiceUnavailableError(
            f"the tracking server at {tracking_uri} answered {CURRENT_USER} with HTTP {status}"
        )
    return str(body["user"]["username"])


def resolve_actor(tracking_uri: str, explicit: str | None, default: str | None = None) -> str:
    """The authenticated MLflow user where there is one (``--actor`` may only repeat it); else
    ``--actor``, ``EMBEDOPS_ACTOR``, ``default`` or the OS user, as on a single-user setup."""
    from embedops.core.settings import actor

    user = authenticated_user(tracking_uri)
    if user is None:
        return actor(explicit or default)
    if explicit and explicit != user:
        raise NotAuthorizedError(
            f"--actor {explicit}: the tracking server authenticated you as '{user}', and the "
            "ledger records who MLflow authenticated"
        )
    return user


def model_grant(tracking_uri: str, user: str, name: str) -> str | None:
    """MLflow's effective permission of ``user`` on registered model ``name`` ("READ", "EDIT", ...);
    None without authentication or when the model does not exist yet (whoever creates it owns it)."""
    if _username(tracking_uri) is None or not _model_exists(name):
        return None
    status, body = _get(
        tracking_uri, USER_PERMISSION, {"username": user, "resource_type": "registered_model", "resource_id": name}
    )
    if status == 404 and "permission" not in body:
        return None
    if status != 200:
        raise NotAuthorizedError(
            f"MLflow would not say what '{user}' may do to registered model '{name}' "
            f"(HTTP {status}: {body.get('message', '')})"
        )
    return str(body["permission"])


def _model_exists(name: str) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def require_can_register(tracking_uri: str, name: str) -> None:
    """Before training: will MLflow let this user add a version to ``name``? Say so now, not after an hour."""
    user = authenticated_user(tracking_uri)
    if user is None:
        return
    grant = model_grant(tracking_uri, user, name)
    if grant is not None and grant not in UPDATE_GRANTS:
        raise NotAuthorizedError(
            f"MLflow grants '{user}' {grant} on registered model '{name}': registering a version needs EDIT or "
            f"MANAGE. Train with --no-register and ask a release manager to run `embedops register "
            f"runs:/<run id>/model --name {name}`"
        )
