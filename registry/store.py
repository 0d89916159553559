"""MLflow Model Registry access: versions, aliases and tags. Verifying a version's files is ``registry.verified``."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from embedops.core.errors import EmbedopsError
from embedops.core.names import parse_version, validate_name

PRODUCTION, PREVIOUS, CANDIDATE = "production", "previous", "candidate"
N = TypeVar("N", int, float)
ALIASES = (PRODUCTION, PREVIOUS, CANDIDATE)


class RegistryError(EmbedopsError):
    """A registered model, version or alias is missing or in the wrong state."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    run_id: str | None
    source: str
    created: int

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def _info(v: Any) -> VersionInfo:
    return VersionInfo(
        name=v.name,
        version=str(v.version),
        aliases=list(v.aliases or []),
        tags=dict(v.tags or {}),
        run_id=v.run_id,
        source=v.source,
        created=int(v.creation_timestamp or 0),
    )


def get_version(name: str, version: str) -> VersionInfo:
    from mlflow.exceptions import MlflowException

    validate_name(name)
    number = parse_version(version)
    try:
        return _info(client().get_model_version(name, number))
    except MlflowException:
        list_versions(name)  # a model nobody registered: the error names the store it looked in
        raise RegistryError(f"{name} has no version {number} (see `embedops models {name}`)") from None


def list_versions(name: str) -> list[VersionInfo]:
    validate_name(name)
    found = [_info(v) for v in client().search_model_versions(f"name='{name}'")]
    if not found:
        import mlflow

        raise RegistryError(
            f"no registered model named '{name}' in {mlflow.get_registry_uri()} (another store? "
            "set MLFLOW_TRACKING_URI or EMBEDOPS_HOME)"
        )
    # Search results leave aliases empty on some stores; the registered model always has them.
    by_version: dict[str, list[str]] = {}
    for alias, version in (client().get_registered_model(name).aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    for info in found:
        info.aliases[:] = sorted(set(info.aliases) | set(by_version.get(info.version, [])))
    return sorted(found, key=lambda v: int(v.version), reverse=True)


@dataclass(frozen=True)
class VersionRow:
    """One version as ``embedops models`` lists it: aliases, headline metrics, the gate's verdict."""

    version: str
    aliases: list[str]
    ndcg_at_10: float | None  # golden-set metrics recorded at registration (None: registered without one)
    recall_at_10: float | None
    gate_verdict: str | None
    embedding_dim: int | None
    run_id: str | None
    created: str  # ISO time, UTC


@dataclass(frozen=True)
class ModelListing:
    """A model's versions, newest first; ``to_dict`` is ``models --json``."""

    model: str
    versions: list[VersionRow]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tag_number(tags: dict[str, str], key: str, kind: type[N]) -> N | None:
    """A numeric version tag as a number (MLflow keeps every tag as text); None when absent or not one."""
    try:
        return kind(tags[key]) if key in tags else None
    except ValueError:
        return None


def model_listing(name: str) -> ModelListing:
    rows = [
        VersionRow(
            version=v.version,
            aliases=v.aliases,
            ndcg_at_10=tag_number(v.tags, "ndcg_at_10", float),
            recall_at_10=tag_number(v.tags, "recall_at_10", float),
            gate_verdict=v.tags.get("gate_verdict"),
            embedding_dim=tag_number(v.tags, "embedding_dim", int),
            run_id=v.run_id,
            created=dt.datetime.fromtimestamp(v.created / 1000, dt.UTC).isoformat(),
        )
        for v in list_versions(name)
    ]
    return ModelListing(name, rows)


def alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def production_version(name: str, need: str = "") -> str:
    """The version ``production`` points at; with nothing there, a RegistryError that says so, followed by
    ``need`` (what the caller needed production for, e.g. ``" to roll back"``)."""
    version = alias_version(name, PRODUCTION)
    if version is None:
        list_versions(name)  # a model nobody registered: the error names the store it looked in
        raise RegistryError(f"{name} has nothing in production{need}")
    return version


def set_alias(name: str, alias: str, version: str) -> None:
    client().set_registered_model_alias(name, alias, str(version))


def delete_alias(name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):  # already absent is the state we wanted
        client().delete_registered_model_alias(name, alias)


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    c = client()
    for key, value in tags.items():
        c.set_model_version_tag(name, str(version), key, value)
