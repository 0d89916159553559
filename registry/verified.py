"""The one way a registered version becomes a running model: download once, verify, then load.

Every path that runs a registered version (the gate, evaluate, drift, serve, retraining from
production, alias moves and doctor) comes through here, so what runs is exactly what was
registered and gated. Verified before any of it is loaded:

1. the logged model's shape (``evaluation.models.check_model_folder``): ``MLmodel`` names the plain
   sentence-transformers flavor with MLflow's own loader and no pickle or code paths; no pickle
   anywhere; no remote or custom code;
2. every tensor of every safetensors file reads back (a truncated file is named as corrupt);
3. every file against the version's sha256 manifest (MLmodel, conda.yaml, requirements.txt,
   python_env.yaml and every file of the weights folder), whose own digest is a tag set when the
   version was created: a version without one cannot be verified and is refused.

Loading then never enables remote code.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from embedops.core.errors import EmbedopsError, ModelError
from embedops.core.names import validate_name
from evaluation.cache import weights_digest
from evaluation.job import LoadedModel
from evaluation.models import FLAVOR_FOLDER, check_model_folder, check_safetensors, download_model
from evaluation.models import load_sentence_transformer as load_folder
from registry import store
from registry.contract import MANIFEST_FILE, MANIFEST_TAG, manifest_digest, manifest_problems
from registry.store import VersionInfo


def registered_manifest(info: VersionInfo, scratch: Path) -> dict[str, str]:
    """The manifest logged with the version's run, checked against the digest tagged on the version."""
    digest = info.tags.get(MANIFEST_TAG)
    if not digest:
        raise ModelError(
            f"{info.uri} has no sha256 manifest (tag {MANIFEST_TAG}), so its files cannot be "
            f"verified; re-register it: embedops register {info.uri} --name {info.name}"
        )
    try:
        path = store.client().download_artifacts(info.run_id, MANIFEST_FILE, str(scratch))
        manifest = json.loads(Path(path).read_text())
    except Exception as exc:  # MLflow raises several types for a missing artifact
        raise ModelError(f"{info.uri}: its file manifest cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or manifest_digest(manifest) != digest:
        raise ModelError(f"{info.uri}: its file manifest was changed after registration")
    if "MLmodel" not in manifest:
        raise ModelError(
            f"{info.uri}: its manifest predates embedops covering MLmodel and the environment "
            f"files; re-register it: embedops register {info.uri} --name {info.name}"
        )
    return manifest


def check_against_manifest(info: VersionInfo, root: Path, manifest: dict[str, str]) -> None:
    problems = manifest_problems(manifest, root)
    if problems:
        raise ModelError(f"{info.uri}: {'; '.join(problems[:5])} (files differ from the registered manifest)")


def verify_folder(info: VersionInfo, root: Path, scratch: Path) -> Path:
    """Checks 1-3 on a downloaded copy of ``info``; returns its weights folder."""
    try:
        folder = check_model_folder(root)
    except ModelError as exc:
        raise ModelError(f"{info.uri}: its files are missing or unusable: {exc}") from None
    check_safetensors(folder, info.uri)
    check_against_manifest(info, root, registered_manifest(info, scratch))
    return folder


@contextmanager
def verified_copy(info: VersionInfo) -> Iterator[Path]:
    """A temporary, verified copy of the version's logged model (its top folder, where MLmodel is)."""
    with tempfile.TemporaryDirectory(prefix="embedops-verified-") as tmp:
        try:
            root = download_model(info.uri, Path(tmp) / "model")
        except ModelError as exc:
            raise ModelError(f"{info.uri}: its files are missing or unusable ({exc})") from None
        verify_folder(info, root, Path(tmp) / "manifest")
        yield root


def check_version_files(info: VersionInfo) -> None:
    """Verify without loading (no torch): what every alias move and doctor checks."""
    with verified_copy(info):
        pass


def load_version(info: VersionInfo, *, device: str | None = None) -> LoadedModel:
    """The version as a model ready to evaluate, embed or serve, loaded from its verified copy."""
    with verified_copy(info) as root:
        folder = root / FLAVOR_FOLDER
        return LoadedModel(info.uri, load_folder(folder, device=device), weights_digest(folder))


def parse_registry_uri(ref: str) -> tuple[str, str] | None:
    """(name, version or @alias) of ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``; None otherwise
    (a folder, a run's model, a logged model id ``models:/m-...`` that no version names)."""
    if not ref.startswith("models:/"):
        return None
    rest = ref.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, "@" + alias
    if "/" in rest:
        name, version = rest.split("/", 1)
        return name, version
    return None


def version_for(ref: str) -> VersionInfo | None:
    """The registered version a model reference names, or None when it names none."""
    parsed = parse_registry_uri(ref)
    if parsed is None:
        return None
    name, which = parsed
    if which.startswith("@"):
        version = store.alias_version(validate_name(name), which[1:])
        if version is None:
            raise store.RegistryError(f"{name} has no alias '{which[1:]}' (see `embedops models {name}`)")
        which = version
    return store.get_version(name, which)


def load_reference(ref: str | Path) -> LoadedModel:
    """Any model reference a user may give: registered versions go through the verified path,
    folders and runs' models through the same shape checks without a manifest to compare."""
    from evaluation.job import load_for_evaluation

    info = version_for(str(ref))
    if info is None:
        return load_for_evaluation(ref)
    # Reported as the user wrote it (an MLproject run already logged that as its `model` param).
    return replace(load_version(info), ref=str(ref))


def alias_file_problems(name: str) -> list[tuple[str, str, str | None]]:
    """(alias, version, what is wrong with its files or None) for each alias (production, previous, candidate) set."""
    found: list[tuple[str, str, str | None]] = []
    for alias in store.ALIASES:
        version = store.alias_version(name, alias)
        if version is None:
            continue
        try:
            check_version_files(store.get_version(name, version))
        except EmbedopsError as exc:
            found.append((alias, version, str(exc)))
        else:
            found.append((alias, version, None))
    return found
