"""Indexes of registered versions: resolve the version, load it verified, build, and record the result.

``indexing`` knows models only as an identity and an encoder; here a registry version becomes both
(through ``verified.load_version``, the one loader), and a verified index becomes an MLflow run in
the ``indexes`` experiment plus tags on its version (``index.<corpus>`` = the index id, and its
rows, corpus version and run), so the registry UI shows which index each version has.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from embedops.core.errors import ConfigError, ModelError
from embedops.core.progress import phase
from embedops.core.settings import Settings
from evaluation.job import LoadedModel
from indexing.build import BuildOptions, BuildResult, ChunkEngine, Encoder, build_index
from indexing.corpus_store import CorpusStore
from indexing.inventory import removable_versions
from indexing.manifest import IndexManifest, ModelIdentity, all_manifests, drop, index_id, read_manifest
from indexing.ray_engine import RayEngine, RayOptions
from indexing.search import Answer, Searcher, find
from registry import store
from registry.index_moves import IndexRoots, bring_up_to_date
from registry.store import VersionInfo
from registry.verified import load_version

EXPERIMENT = "indexes"


def resolve(name: str, which: str) -> VersionInfo:
    """A version by number (``3``, ``v3``) or by alias (``production``, ``@candidate``)."""
    alias = which.removeprefix("@")
    if alias in store.ALIASES:
        version = store.alias_version(name, alias)
        if version is None:
            raise store.RegistryError(f"{name} has no alias '{alias}' (see `embedops models {name}`)")
        return store.get_version(name, version)
    return store.get_version(name, which)


def identity(info: VersionInfo, loaded: LoadedModel) -> ModelIdentity:
    """The version's contract, from its tags, with the digest of the weights actually loaded."""
    tags = info.tags
    try:
        return ModelIdentity(
            name=info.name,
            version=info.version,
            weights_digest=loaded.digest,
            tokenizer_sha256=tags["tokenizer_sha256"],
            dimension=int(tags["embedding_dim"]),
            normalize=tags.get("normalize", "false") == "true",
            similarity=tags.get("similarity", "cosine"),
            max_seq_length=int(tags.get("max_seq_length", "0")),
        )
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{info.uri} has no usable contract tags ({exc}); re-register it") from None


@dataclass(frozen=True)
class IndexBuild:
    result: BuildResult
    run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "run_id": self.run_id}


def build_in(
    roots: IndexRoots,
    name: str,
    which: str,
    corpus: str,
    *,
    corpus_version: int | None = None,
    options: BuildOptions | None = None,
    rebuild: bool = False,
    ray: RayOptions | None = None,
    after_chunk: Callable[[int], None] | None = None,
    engine_seen: Callable[[ChunkEngine], None] | None = None,
) -> IndexBuild:
    """Build (or resume) version ``which``'s index of ``corpus``, and record it once verified.

    With ``ray``, a Ray cluster encodes (each actor loads the version itself, verified the same way);
    committing and verifying stay in this process, so the index is the one a local build makes.
    ``engine_seen`` is handed the engine before the build starts (tests reach its workers)."""
    corpora = CorpusStore(roots.corpora)
    version = corpora.get(corpus, corpus_version)  # before the model loads: a wrong name costs a second
    documents = corpora.documents(version)
    info = resolve(name, which)
    with phase(f"loading {info.uri} (checked against its manifest)"):
        loaded = load_version(info)
    model = identity(info, loaded)
    if rebuild:
        drop(roots.indexes, index_id(model.name, model.version, corpus))
    options = options or BuildOptions()
    encoder: Encoder | ChunkEngine = loaded.model
    if ray is not None:
        encoder = RayEngine(
            load=partial(worker_loader, info),
            digest=model.weights_digest,
            dimension=model.dimension,
            env=worker_env(),
            options=ray,
            batch_size=options.batch_size,
            precision=options.precision,
        )
        if engine_seen is not None:
            engine_seen(encoder)
    result = build_index(
        roots.indexes,
        model,
        encoder,
        version,
        documents,
        recheck=partial(corpora.documents, version),
        options=options,
        after_chunk=after_chunk,
    )
    run_id = None if result.already else record_manifest(result.manifest, roots.artifact_root)
    return IndexBuild(result, run_id)


# what a Ray worker needs to find the same stores and stay offline: the tracking server and its
# credentials, embedops' own settings, the hub switches
WORKER_ENV_PREFIXES = ("EMBEDOPS_", "MLFLOW_", "AWS_", "AZURE_", "GOOGLE_", "HF_", "TRANSFORMERS_")


def worker_env() -> dict[str, str]:
    import os

    from embedops.core.settings import load_settings

    env = {k: v for k, v in os.environ.items() if k.startswith(WORKER_ENV_PREFIXES)}
    env["EMBEDOPS_HOME"] = str(load_settings().home)  # absolute: a worker's directory is not ours
    return env


def worker_loader(info: VersionInfo) -> tuple[Any, str]:
    """Runs on each Ray actor: the settings from its environment, then the one verified loader."""
    from embedops.core.settings import configure

    configure(create=False)
    loaded = load_version(info)
    return loaded.model, loaded.digest


def record_manifest(manifest: IndexManifest, artifact_root: str | None) -> str:
    """The manifest as an MLflow run in the ``indexes`` experiment, and tags on its model version.

    A run of its own, made through the client: under ``mlflow run`` (whose run ``start_run`` would
    adopt) the index record still lands in ``indexes``, and the job's own parameters stay its own."""
    from mlflow.entities import Metric, Param

    from embedops.core.runs import ensure_experiment

    client = store.client()
    experiment = ensure_experiment(EXPERIMENT, artifact_root)
    model = manifest.model
    run = client.create_run(experiment, run_name=manifest.index_id)
    run_id: str = run.info.run_id
    params = {
        "index_id": manifest.index_id,
        "model": model.name,
        "version": model.version,
        "weights_digest": model.weights_digest,
        "tokenizer_sha256": model.tokenizer_sha256,
        "dimension": model.dimension,
        "normalize": model.normalize,
        "similarity": model.similarity,
        "corpus": manifest.corpus,
        "corpus_version": manifest.corpus_version,
        "corpus_digest": manifest.corpus_digest,
        "chunk_size": manifest.chunk_size,
        "precision": manifest.precision,
        "ann": json.dumps(manifest.ann) if manifest.ann else "exact",
    }
    metrics = {"rows": manifest.rows, "build_seconds": manifest.build_seconds, "attempts": manifest.attempts}
    if manifest.docs_per_s is not None:
        metrics["docs_per_s"] = manifest.docs_per_s
    if manifest.ann_recall_at_10 is not None:
        metrics["ann_recall_at_10"] = manifest.ann_recall_at_10
    try:
        stamp = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), stamp, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index_manifest.json"
            path.write_text(json.dumps(manifest.to_dict(), indent=1))
            client.log_artifact(run_id, str(path))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    prefix = f"index.{manifest.corpus}"
    store.tag_version(
        model.name,
        model.version,
        {
            prefix: manifest.index_id,
            f"{prefix}.rows": str(manifest.rows),
            f"{prefix}.corpus_version": str(manifest.corpus_version),
            f"{prefix}.run_id": run_id,
        },
    )
    return run_id


def searcher_in(root: Path, name: str, which: str, corpus: str) -> Searcher:
    """The version's verified index under ``root`` with the version loaded: refused if either fails its checks."""
    info = resolve(name, which)
    loaded = load_version(info)
    model = identity(info, loaded)
    return Searcher(root, find(root, model, corpus), model, loaded.model)


def searcher_for(settings: Settings, name: str, which: str, corpus: str) -> Searcher:
    return searcher_in(settings.index_root, name, which, corpus)


@dataclass(frozen=True)
class SearchResult:
    model: str
    version: str
    corpus: str
    corpus_version: int
    index_id: str
    answers: list[Answer]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "corpus": self.corpus,
            "corpus_version": self.corpus_version,
            "index_id": self.index_id,
            "answers": [a.to_dict() for a in self.answers],
        }


def search(settings: Settings, name: str, which: str, corpus: str, queries: list[str], k: int) -> SearchResult:
    searcher = searcher_for(settings, name, which, corpus)
    manifest = searcher.manifest
    answers = searcher.search(queries, k)
    return SearchResult(name, manifest.model.version, corpus, manifest.corpus_version, manifest.index_id, answers)


def roots_of(settings: Settings) -> IndexRoots:
    return IndexRoots(settings.index_root, settings.corpus_root, settings.artifact_root)


@dataclass(frozen=True)
class SyncReport:
    model: str
    corpus: str
    corpus_version: int
    synced: list[dict[str, Any]]  # alias, version and the SyncResult of each index that moved
    skipped: list[str]  # why each alias's index did not (already there, no index, ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync_model(settings: Settings, name: str, corpus: str) -> SyncReport:
    """Production's, candidate's and previous's indexes of ``corpus`` brought to its latest version."""
    roots = roots_of(settings)
    latest = CorpusStore(roots.corpora).get(corpus)
    synced, skipped, seen = [], [], set()
    for alias in store.ALIASES:
        version = store.alias_version(name, alias)
        if version is None or version in seen:
            continue
        seen.add(version)
        manifest = read_manifest(roots.indexes, index_id(name, version, corpus))
        if manifest is None or manifest.state != "verified":
            skipped.append(f"{alias} v{version}: no verified index of {corpus}")
            continue
        _, result = bring_up_to_date(roots, store.get_version(name, version), manifest, load_version)
        if result is None:
            skipped.append(f"{alias} v{version}: already at {corpus} v{manifest.corpus_version}")
        else:
            synced.append({"alias": alias, "version": version, **result.to_dict()})
    return SyncReport(name, corpus, latest.version, synced, skipped)


@dataclass(frozen=True)
class GcReport:
    model: str
    keep: int
    kept: list[str]
    removed: list[str]
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gc(settings: Settings, name: str, *, keep: int, dry_run: bool) -> GcReport:
    """Remove the indexes of versions that are neither among the last ``keep`` production versions nor
    pointed at by an alias (see ``indexing.inventory.removable_versions``)."""
    from registry.ledger import Ledger

    if keep < 1:
        raise ConfigError("--keep must be at least 1: production's own index is always kept")
    roots = roots_of(settings)
    mine = [m for m in all_manifests(roots.indexes) if m.model.name == name]
    moves = [
        m.to_version
        for m in Ledger(settings.ledger_url).history(name)
        if m.alias == store.PRODUCTION and m.outcome == "success" and m.to_version
    ]
    aliased = {v for a in store.ALIASES if (v := store.alias_version(name, a)) is not None}
    removable = removable_versions({m.model.version for m in mine}, moves, aliased, keep)
    removed = sorted(m.index_id for m in mine if m.model.version in removable)
    if not dry_run:
        for index in removed:
            drop(roots.indexes, index)
    kept = sorted(m.index_id for m in mine if m.index_id not in removed)
    return GcReport(name, keep, kept, removed, dry_run)
