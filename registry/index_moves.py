"""A version serves only with its own verified, up-to-date index of each corpus production serves.

Production "serves" a corpus when its version has a verified index of it. Before any move of
production (promote, skip-gate or gated, and rollback) the version moving in must have a verified
index of each of those corpora, whose files pass their recorded sha256 and whose weights digest is
the version's own; ``--build-index`` builds the missing ones first, and an index behind its corpus is
synced to the latest version before the move (a rollback's older index too). The ledger row names
the index ids, so "what served at time T" has an answer for the index too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from embedops.core.errors import EmbedopsError, VectorIndexError
from embedops.core.progress import phase
from evaluation.cache import weights_digest
from evaluation.job import LoadedModel
from evaluation.models import FLAVOR_FOLDER
from indexing.build import BuildOptions, build_index
from indexing.corpus_store import CorpusStore
from indexing.manifest import IndexManifest, all_manifests, index_id, read_manifest
from indexing.search import open_verified
from indexing.sync import SyncResult, sync_index
from registry.store import VersionInfo


class MissingIndexError(VectorIndexError):
    """The version moving into production has no verified index for a corpus production serves."""


@dataclass(frozen=True)
class IndexRoots:
    """Where indexes and corpora live, and where an index's MLflow record keeps its artifacts."""

    indexes: Path
    corpora: Path
    artifact_root: str | None


def serving(root: Path, name: str, version: str | None) -> list[IndexManifest]:
    """The verified indexes of ``name`` v``version``: the corpora it serves."""
    if version is None:
        return []
    return [
        m for m in all_manifests(root) if m.model.name == name and m.model.version == version and m.state == "verified"
    ]


def version_weights(info: VersionInfo) -> str:
    """The weights digest of the version's registered files (verified against its manifest on the way)."""
    from registry.verified import verified_copy

    with verified_copy(info) as root:
        return weights_digest(root / FLAVOR_FOLDER)


def problem(root: Path, manifest: IndexManifest | None, target: VersionInfo, corpus: str, digest: str) -> str | None:
    """Why ``manifest`` cannot serve ``corpus`` for ``target``, or None."""
    if manifest is None:
        return f"no index of corpus '{corpus}'"
    if manifest.state != "verified":
        return f"index {manifest.index_id} is {manifest.state}" + (f" ({manifest.error})" if manifest.error else "")
    if manifest.model.weights_digest != digest:
        return (
            f"index {manifest.index_id} was built from weights {manifest.model.weights_digest[:12]}, "
            f"v{target.version}'s are {digest[:12]}"
        )
    try:
        open_verified(root, manifest)
    except VectorIndexError as exc:
        return str(exc)
    return None


def describe(manifest: IndexManifest) -> str:
    return (
        f"{manifest.corpus}: index {manifest.index_id}, {manifest.rows:,} rows of {manifest.corpus} "
        f"v{manifest.corpus_version}, built in {manifest.build_seconds:.1f} s"
    )


def needed_corpora(roots: IndexRoots, name: str, current: str | None) -> list[str]:
    return sorted({m.corpus for m in serving(roots.indexes, name, current)})


def missing(roots: IndexRoots, target: VersionInfo, corpora: list[str], digest: str | None = None) -> dict[str, str]:
    """corpus -> why ``target`` cannot serve it yet (empty: it can serve every one)."""
    if not corpora:
        return {}
    digest = digest or version_weights(target)
    found = {}
    for corpus in corpora:
        manifest = read_manifest(roots.indexes, index_id(target.name, target.version, corpus))
        why = problem(roots.indexes, manifest, target, corpus, digest)
        if why:
            found[corpus] = why
    return found


def refusal(target: VersionInfo, gaps: dict[str, str], *, can_build: bool) -> MissingIndexError:
    builds = "; ".join(
        f"embedops index build {target.name} --version {target.version} --corpus {c}" for c in sorted(gaps)
    )
    also = " or pass --build-index" if can_build else ""
    reasons = "; ".join(f"{c}: {why}" for c, why in sorted(gaps.items()))
    return MissingIndexError(
        f"{target.name} v{target.version} cannot serve every corpus production serves ({reasons}); "
        f"build its index first ({builds}){also}"
    )


def build_missing(
    roots: IndexRoots, target: VersionInfo, corpora: list[str], load: Callable[[VersionInfo], LoadedModel]
) -> None:
    """Build ``target``'s index of each corpus (the latest corpus version), with the version loaded once."""
    from registry.indexes import identity, record_manifest

    if not corpora:
        return
    loaded = load(target)
    model = identity(target, loaded)
    store = CorpusStore(roots.corpora)
    for corpus in corpora:
        version = store.get(corpus)
        with phase(f"building v{target.version}'s index of {corpus} v{version.version} ({version.rows:,} docs)"):
            result = build_index(
                roots.indexes,
                model,
                loaded.model,
                version,
                store.documents(version),
                recheck=partial(store.documents, version),
                options=BuildOptions(),
            )
        if not result.already:
            record_manifest(result.manifest, roots.artifact_root)


def ensure(
    roots: IndexRoots,
    target: VersionInfo,
    current: str | None,
    *,
    build: bool,
    load: Callable[[VersionInfo], LoadedModel],
) -> list[IndexManifest]:
    """The verified indexes ``target`` will serve with, building the missing ones when ``build``;
    raises ``MissingIndexError`` (nothing moved) when one is missing and may not be built."""
    corpora = needed_corpora(roots, target.name, current)
    if not corpora:
        return []
    digest = version_weights(target)
    gaps = missing(roots, target, corpora, digest)
    if gaps and build:
        try:
            build_missing(roots, target, sorted(gaps), load)
        except EmbedopsError as exc:
            raise MissingIndexError(f"building v{target.version}'s index failed: {exc}") from None
        gaps = missing(roots, target, corpora, digest)
    if gaps:
        raise refusal(target, gaps, can_build=not build)
    found = [read_manifest(roots.indexes, index_id(target.name, target.version, c)) for c in corpora]
    # Serving starts at the corpus's latest version: a rollback's older index catches up first.
    return [bring_up_to_date(roots, target, m, load)[0] for m in found if m is not None]


def ledger_detail(manifests: list[IndexManifest]) -> str:
    return (
        "indexes: " + ", ".join(f"{m.index_id}@{m.corpus}v{m.corpus_version}" for m in manifests) if manifests else ""
    )


def bring_up_to_date(
    roots: IndexRoots, target: VersionInfo, manifest: IndexManifest, load: Callable[[VersionInfo], LoadedModel]
) -> tuple[IndexManifest, SyncResult | None]:
    """``manifest``'s index synced to its corpus's latest version (None: it was there already)."""
    from registry.indexes import identity

    store = CorpusStore(roots.corpora)
    latest = store.get(manifest.corpus)
    if manifest.corpus_version >= latest.version:
        return manifest, None
    loaded = load(target)
    old = store.documents(store.get(manifest.corpus, manifest.corpus_version))
    return sync_index(
        roots.indexes,
        manifest,
        identity(target, loaded),
        loaded.model,
        latest,
        store.versions(manifest.corpus),
        old,
        store.documents(latest),
        recheck=partial(store.documents, latest),
    )
