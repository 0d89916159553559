"""MLflow Model Registry access: versions, aliases, tags, and a light check of a version's files."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.errors import EmbedopsError, ModelError
from evaluation.models import resolve_model_folder
from registry.names import validate_name

PRODUCTION, PREVIOUS, CANDIDATE = "production", "previous", "candidate"
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
    return VersionInfo(name=v.name, version=str(v.version), aliases=list(v.aliases or []), tags=dict(v.tags or {}),
                       run_id=v.run_id, source=v.source, created=int(v.creation_timestamp or 0))


def get_version(name: str, version: str) -> VersionInfo:
    from mlflow.exceptions import MlflowException

    validate_name(name)
    if not str(version).isdigit():
        raise RegistryError(f"version must be a number, got '{version}'")
    try:
        return _info(client().get_model_version(name, str(version)))
    except MlflowException:
        raise RegistryError(f"{name} has no version {version} (see `embedops models {name}`)") from None


def list_versions(name: str) -> list[VersionInfo]:
    validate_name(name)
    found = [_info(v) for v in client().search_model_versions(f"name='{name}'")]
    if not found:
        raise RegistryError(f"no registered model named '{name}'")
    # Search results leave aliases empty on some stores; the registered model always has them.
    by_version: dict[str, list[str]] = {}
    for alias, version in (client().get_registered_model(name).aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    for info in found:
        info.aliases[:] = sorted(set(info.aliases) | set(by_version.get(info.version, [])))
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


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


def alias_file_problems(name: str) -> list[tuple[str, str, str | None]]:
    """(alias, version, what is wrong with its files or None) for each alias (production, previous, candidate) set."""
    found = []
    for alias in (PRODUCTION, PREVIOUS, CANDIDATE):
        version = alias_version(name, alias)
        if version is None:
            continue
        try:
            check_version_files(get_version(name, version))
        except EmbedopsError as exc:
            found.append((alias, version, str(exc)))
        else:
            found.append((alias, version, None))
    return found


def check_version_files(info: VersionInfo) -> None:
    """Download the version's model and check that its weights are present and readable safetensors.

    Cheap enough for every move (no torch import): each tensor is read with numpy, so a truncated or
    overwritten weights file is caught before an alias points at it.
    """
    from safetensors import SafetensorError, safe_open

    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = resolve_model_folder(info.uri, download_dir=Path(tmp))
        except ModelError as exc:
            raise ModelError(f"{info.uri}: its files are missing or unusable ({exc})") from None
        for weights in folder.rglob("*.safetensors"):
            try:
                with safe_open(str(weights), framework="numpy") as fh:
                    for key in fh.keys():  # noqa: SIM118 (safe_open is not a mapping)
                        fh.get_tensor(key)
            except (SafetensorError, OSError, ValueError) as exc:
                raise ModelError(f"{info.uri}: {weights.relative_to(folder)} is corrupt ({exc})") from None
        check_manifest(info, folder, Path(tmp))


def check_manifest(info: VersionInfo, folder: Path, scratch: Path) -> None:
    """Every file as registered: the run's manifest (itself checked against the version's tag) must
    match the files now in the store. A version registered before manifests existed has no tag."""
    import json

    from registry.contract import MANIFEST_FILE, MANIFEST_TAG, manifest_digest, manifest_problems

    digest = info.tags.get(MANIFEST_TAG)
    if not digest:
        return
    try:
        path = client().download_artifacts(info.run_id, MANIFEST_FILE, str(scratch / "manifest"))
        manifest = json.loads(Path(path).read_text())
    except Exception as exc:  # MLflow raises several types for a missing artifact
        raise ModelError(f"{info.uri}: its file manifest cannot be read ({exc})") from None
    if manifest_digest(manifest) != digest:
        raise ModelError(f"{info.uri}: its file manifest was changed after registration")
    problems = manifest_problems(manifest, folder)
    if problems:
        raise ModelError(f"{info.uri}: {'; '.join(problems[:5])} (files differ from the registered manifest)")
