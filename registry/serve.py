"""Serve the version behind an alias: embedops loads and checks it, MLflow's scoring server answers.

Why not `mlflow models serve -m models:/...`: MLflow's loader reads MLmodel to decide what to run
(a ``python_model`` pickle would be unpickled) and loads sentence-transformers with remote code on.
Instead the version is downloaded once into a serving copy under the home, verified like every
other load (``registry.verified``: MLmodel's shape, no pickle or custom code, every file against
the registered sha256 manifest), and each uvicorn worker checks that copy against the manifest
again, loads it with remote code off and hands the loaded model to MLflow's scoring server
(``scoring_server.init``), which keeps MLflow's HTTP API: ``/invocations``, ``/ping``, ``/version``;
``/model`` says which version this is, ``/search`` searches its indexes, ``/health`` and ``/metrics``
report both.

Each worker follows the alias through the ledger (``live_search``): a promotion or rollback reaches
serving within seconds, model and indexes together, without a restart and without a failed request.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from embedops.core.names import validate_name
from registry import store
from registry.store import RegistryError
from registry.verified import registered_manifest, verify_folder

# What a worker is told by the process that verified the copy (environment variables survive exec).
ENV_FOLDER, ENV_MANIFEST, ENV_MANIFEST_SHA = "EMBEDOPS_SERVE_FOLDER", "EMBEDOPS_SERVE_MANIFEST", "EMBEDOPS_SERVE_SHA256"
ENV_MODEL, ENV_VERSION, ENV_ALIAS = "EMBEDOPS_SERVE_MODEL", "EMBEDOPS_SERVE_VERSION", "EMBEDOPS_SERVE_ALIAS"
ENV_CORPORA = "EMBEDOPS_SERVE_CORPORA"  # comma-separated; unset: every corpus the version has an index of
ENV_POLL_S = "EMBEDOPS_SERVE_POLL_S"  # seconds between ledger reads (0: never follow the alias)


@dataclass(frozen=True)
class ServePlan:
    model: str
    alias: str
    version: str
    url: str
    folder: Path  # the verified serving copy
    argv: list[str]
    env: dict[str, str]  # set for the server on top of the caller's environment

    @property
    def invocations(self) -> str:
        return f"{self.url}/invocations"

    def to_dict(self) -> dict[str, str]:
        """``serve --json``: what a script needs to reach the server (not how it is started)."""
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.version,
            "url": self.url,
            "invocations": self.invocations,
        }


def threads_per_worker(cpus: int, workers: int) -> int:
    """Each worker process gets its share of the cores: torch in every worker using them all
    oversubscribes the CPU (measured: 2 workers on 2 cores serve 20% more texts/s with 1 thread each)."""
    return max(1, cpus // max(1, workers))


def serving_copy(info: store.VersionInfo, copies: Path) -> tuple[Path, Path]:
    """A verified local copy of ``info`` under ``copies`` and its manifest file beside it.

    A copy left by an earlier start is reused only if it still matches the manifest; otherwise it
    is downloaded again into a fresh folder and swapped in whole."""
    from evaluation.models import download_model

    base = copies / info.name / f"v{info.version}"
    folder, manifest_file = base / "model", base / "manifest.json"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base, prefix=".incoming-") as tmp:
        manifest = registered_manifest(info, Path(tmp) / "manifest")
        if folder.is_dir():
            try:
                verify_folder(info, folder, Path(tmp) / "recheck")
            except Exception:  # a stale or damaged copy: fetch it again below
                shutil.rmtree(folder)
        if not folder.is_dir():
            incoming = download_model(info.uri, Path(tmp) / "download")
            verify_folder(info, incoming, Path(tmp) / "check")
            incoming.rename(folder)
        manifest_file.write_text(json.dumps(manifest, indent=1))
    return folder, manifest_file


def plan_serving(
    name: str,
    alias: str = store.PRODUCTION,
    *,
    copies: Path,
    host: str = "127.0.0.1",
    port: int = 5001,
    workers: int = 1,
    corpora: list[str] | None = None,
) -> ServePlan:
    """The version to serve, its verified copy and the command that serves it; refuses an unset
    alias or files that do not match what was registered."""
    validate_name(name)
    validate_name(alias, "alias")
    if not 0 < port < 65536:
        raise RegistryError(f"port {port} is not a TCP port")
    if workers < 1:
        raise RegistryError(f"--workers must be at least 1, got {workers}")
    version = store.alias_version(name, alias)
    if version is None:
        set_aliases = sorted({a for v in store.list_versions(name) for a in v.aliases})
        raise RegistryError(
            f"{name} has no alias '{alias}' (set: {', '.join(set_aliases) or 'none'}); promote a version first"
        )
    info = store.get_version(name, version)
    folder, manifest_file = serving_copy(info, copies)
    from registry.contract import MANIFEST_TAG

    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "registry.serving_app:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    env = {
        ENV_FOLDER: str(folder),
        ENV_MANIFEST: str(manifest_file),
        ENV_MANIFEST_SHA: info.tags[MANIFEST_TAG],
        ENV_MODEL: name,
        ENV_VERSION: version,
        ENV_ALIAS: alias,
        ENV_CORPORA: ",".join(validate_name(c, "corpus name") for c in corpora or []),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(threads_per_worker(os.cpu_count() or 1, workers)),
    }
    return ServePlan(
        model=name, alias=alias, version=version, url=f"http://{host}:{port}", folder=folder, argv=argv, env=env
    )
