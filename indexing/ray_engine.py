"""Encode an index's chunks on a Ray cluster: Ray Data feeds the chunks to a pool of actors, each
holding one copy of the model.

The driver (the ``embedops index build`` process) keeps what makes a build safe: the chunk plan,
one LanceDB commit per chunk, the manifest, verification. Each chunk is one Ray Data block, so a
worker that dies costs Ray one block, which it retries on a restarted actor; a driver that dies
leaves whole chunks only, and the next run resumes from them, exactly as a local build.

Vectors travel back to the driver (1.5 KB per 384-d document) rather than being written by the
workers, because a Lance write from many workers commits once, at the end: a kill would lose the
whole build instead of one chunk.

Ray is an optional install (``pip install 'embedops[ray]'``); nothing here imports it at load time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedops.core import progress
from embedops.core.errors import ConfigError, EmbedopsError, VectorIndexError

# a loader that runs on each worker: (model, digest of the weights it loaded)
Loader = Callable[[], tuple[Any, str]]


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local cluster sized to this machine; "auto": the running one
    actors: int | None = None  # None: as many as the cluster's CPUs (or GPUs) allow
    actor_cpus: float = 1.0
    actor_gpus: float = 0.0
    retries: int = 3  # times a block is retried, and an actor restarted, after a worker dies


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--engine ray needs Ray, which the base install leaves out: pip install 'embedops[ray]'"
        ) from None
    return ray


def connect(options: RayOptions) -> tuple[dict[str, float], bool]:
    """Join (or start) the cluster; (its resources, whether this process started it)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray.cluster_resources(), False
    if options.address is None:
        cpus = os.cpu_count() or 1
        progress.say(f"starting a local Ray cluster with {cpus} CPUs (no --ray-address given)")
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        progress.say(f"joining the Ray cluster at {options.address}")
        try:
            ray.init(address=options.address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError) as exc:
            raise ConfigError(f"no Ray cluster answers at {options.address} ({exc})") from None
    return ray.cluster_resources(), True


def pool_size(options: RayOptions, resources: dict[str, float]) -> int:
    """The actors asked for, or as many as the cluster holds; refused when the cluster cannot hold one."""
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if options.actor_cpus > cpus or options.actor_gpus > gpus:
        raise ConfigError(
            f"one actor needs {options.actor_cpus:g} CPUs and {options.actor_gpus:g} GPUs; "
            f"the cluster has {cpus:g} CPUs and {gpus:g} GPUs"
        )
    fits = int(cpus // options.actor_cpus) if options.actor_cpus else int(gpus // options.actor_gpus)
    if options.actor_gpus:
        fits = min(fits, int(gpus // options.actor_gpus))
    return max(1, options.actors or fits)


def embedops_cause(exc: BaseException) -> EmbedopsError | None:
    """The embedops error a worker raised, under Ray's wrappers (``cause``, ``__cause__``), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, EmbedopsError):
            return current
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


class ChunkActor:
    """One model per actor, loaded once and checked against the build's fingerprint before it encodes."""

    def __init__(self, load: Loader, digest: str, batch_size: int, precision: str) -> None:
        self.encoder, loaded = load()
        if loaded != digest:
            raise VectorIndexError(
                f"a Ray worker loaded weights {loaded[:12]}, not the {digest[:12]} this build encodes with: "
                "the version changed under the build or the worker reached another store"
            )
        self.batch_size, self.precision = batch_size, precision

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from indexing.build import encode_texts

        out: dict[str, list[Any]] = {"chunk": [], "rows": [], "vectors": [], "pid": []}
        for n, texts in zip(batch["chunk"], batch["texts"], strict=True):
            vectors = encode_texts(self.encoder, list(texts), batch_size=self.batch_size, precision=self.precision)
            out["chunk"].append(int(n))
            out["rows"].append(len(vectors))
            out["vectors"].append(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
            out["pid"].append(os.getpid())
        return {
            "chunk": np.asarray(out["chunk"], dtype=np.int64),
            "rows": np.asarray(out["rows"], dtype=np.int64),
            "vectors": np.asarray(out["vectors"], dtype=object),
            "pid": np.asarray(out["pid"], dtype=np.int64),
        }


@dataclass
class RayEngine:
    """A ``ChunkEngine`` on Ray Data: one block per chunk, an actor pool encodes them."""

    load: Loader
    digest: str
    dimension: int
    env: dict[str, str]
    options: RayOptions = RayOptions()
    batch_size: int = 32
    precision: str = "fp32"
    worker_pids: set[int] = field(default_factory=set)  # the processes that encoded chunks (tests kill one)
    actors: int = 0

    def encode_chunks(self, chunks: Sequence[tuple[int, list[str]]]) -> Iterator[tuple[int, np.ndarray]]:
        if not chunks:
            return
        ray = require_ray()
        resources, started = connect(self.options)
        try:
            self.actors = min(pool_size(self.options, resources), len(chunks))
            progress.say(
                f"encoding {len(chunks)} chunks on {self.actors} Ray actors "
                f"({self.options.actor_cpus:g} CPU{'s' if self.options.actor_cpus != 1 else ''}"
                f"{f', {self.options.actor_gpus:g} GPU' if self.options.actor_gpus else ''} each)"
            )
            yield from self.stream(chunks)
        except EmbedopsError:
            raise
        except Exception as exc:  # Ray wraps what a worker raised; say it in our words
            cause = embedops_cause(exc)
            if cause is not None:
                raise cause from None
            raise VectorIndexError(f"the Ray build stopped: {type(exc).__name__}: {first_line(exc)}") from exc
        finally:
            if started:
                ray.shutdown()

    def stream(self, chunks: Sequence[tuple[int, list[str]]]) -> Iterator[tuple[int, np.ndarray]]:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the build draws its own bar, in documents
        context.print_on_execution_start = False
        items = [{"chunk": n, "texts": texts} for n, texts in chunks]
        encoded = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ChunkActor,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            fn_constructor_kwargs={
                "load": self.load,
                "digest": self.digest,
                "batch_size": self.batch_size,
                "precision": self.precision,
            },
            num_cpus=self.options.actor_cpus,
            num_gpus=self.options.actor_gpus or None,
            # the actors find the tracking server, the stores and the offline switches through these;
            # per build, not per cluster, so one long-lived cluster serves builds of different stores
            runtime_env={"env_vars": self.env},
            max_restarts=self.options.retries,
            max_task_retries=self.options.retries,
        )
        for row in encoded.iter_rows():
            self.worker_pids.add(int(row["pid"]))
            vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(int(row["rows"]), self.dimension)
            yield int(row["chunk"]), vectors
