"""Serve the version behind an alias with MLflow's own scoring server (`mlflow models serve`).

embedops only decides *what* to serve: it resolves the alias to a version once, at start, checks
that version's files, and hands over to MLflow. A promotion therefore reaches serving by restarting
the process (a rolling restart, or `systemctl restart`); the server never changes under a request.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from registry import store
from registry.names import validate_name
from registry.store import RegistryError


@dataclass(frozen=True)
class ServePlan:
    model: str
    alias: str
    version: str
    url: str
    argv: list[str]
    env: dict[str, str]  # set for the server unless the caller's environment already sets it


def threads_per_worker(cpus: int, workers: int) -> int:
    """Each worker process gets its share of the cores: torch in every worker using them all
    oversubscribes the CPU (measured: 2 workers on 2 cores serve 20% more texts/s with 1 thread each)."""
    return max(1, cpus // max(1, workers))


def plan_serving(name: str, alias: str = store.PRODUCTION, *, host: str = "127.0.0.1", port: int = 5001,
                 workers: int = 1) -> ServePlan:
    """The version to serve and the command that serves it; refuses an unset alias or broken files."""
    validate_name(name)
    validate_name(alias, "alias")
    if not 0 < port < 65536:
        raise RegistryError(f"port {port} is not a TCP port")
    version = store.alias_version(name, alias)
    if version is None:
        set_aliases = sorted({a for v in store.list_versions(name) for a in v.aliases})
        raise RegistryError(f"{name} has no alias '{alias}' (set: {', '.join(set_aliases) or 'none'}); "
                            f"promote a version first")
    store.check_version_files(store.get_version(name, version))
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}/{version}",
            "--env-manager", "local", "--host", host, "--port", str(port), "--workers", str(workers)]
    env = {"OMP_NUM_THREADS": str(threads_per_worker(os.cpu_count() or 1, workers))} if workers > 1 else {}
    return ServePlan(model=name, alias=alias, version=version, url=f"http://{host}:{port}", argv=argv, env=env)
