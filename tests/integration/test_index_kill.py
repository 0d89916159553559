"""An index build killed with SIGKILL at random points resumes from its committed chunks and ends
verified, with exactly the vectors of a build that was never interrupted."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import HELPCENTER, read_jsonl, run_embedops, start_embedops, write_jsonl

pytestmark = [pytest.mark.slow]
ROUNDS = 3
CHUNK = "16"


def manifest_progress(path: Path) -> tuple[int, int]:
    """(attempts, chunks_done) as the manifest records them; (0, 0) before the first write."""
    try:
        state = json.loads(path.read_text())
        return int(state["attempts"]), int(state["chunks_done"])
    except (OSError, ValueError, KeyError):
        return 0, 0


def vectors_by_id(index_dir: Path, index_id: str) -> dict[str, np.ndarray]:
    from indexing import lance

    ids, vectors = lance.vectors(lance.open_table(index_dir, index_id))
    return dict(zip(ids, vectors, strict=True))


def test_a_build_killed_at_random_points_resumes_to_the_same_index(
    store, tiny_model: Path, unique_name: str, tmp_path: Path
) -> None:
    env = dict(os.environ)
    name, corpus = unique_name, "big-" + unique_name[-6:]
    assert run_embedops("register", str(tiny_model), "--name", name, env=env).returncode == 0
    rows = [
        {"_id": f"{d['_id']}-{n}", "title": d["title"], "text": f"{d['text']} (copy {n})"}
        for n in range(8)
        for d in read_jsonl(HELPCENTER / "corpus.jsonl")
    ]
    assert (
        run_embedops("corpus", "add", corpus, str(write_jsonl(tmp_path / "corpus.jsonl", rows)), env=env).returncode
        == 0
    )
    index_id = f"{name}-v1-{corpus}"
    manifest = store.index_root / "manifests" / f"{index_id}.json"
    build = ("index", "build", name, "--version", "1", "--corpus", corpus, "--chunk-size", CHUNK, "--json")
    chunks = len(rows) // int(CHUNK)

    rng = random.Random(int(os.environ.get("EMBEDOPS_KILL_SEED", "11")))
    targets = sorted(rng.sample(range(2, chunks - 2), ROUNDS))
    for attempt, target in enumerate(targets, start=1):
        job = start_embedops(*build, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        # The previous round may have committed past this target already: waiting for this job's own
        # attempt in the manifest keeps the kill from landing before the job has begun its build.
        while manifest_progress(manifest) < (attempt, target) and job.poll() is None:
            assert time.monotonic() < deadline, "the build never reached its kill point"
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.03))  # sometimes between a chunk's commit and the manifest's record of it
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=60)
        assert job.returncode == -signal.SIGKILL, "the build finished before it could be killed"
        state = json.loads(manifest.read_text())
        assert (state["state"], state["attempts"]) == ("building", attempt) and state["chunks_done"] >= target

    done = run_embedops(*build, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert (result["state"], result["rows"], result["attempts"]) == ("verified", len(rows), ROUNDS + 1)
    assert result["kept_chunks"] >= targets[-1] and result["encoded"] <= len(rows) - targets[-1] * int(CHUNK)

    clean_dir = tmp_path / "clean-indexes"
    clean = run_embedops(*build, env=env | {"EMBEDOPS_INDEX_DIR": str(clean_dir)})
    assert clean.returncode == 0, clean.stderr[-3000:]
    resumed, uninterrupted = vectors_by_id(store.index_root, index_id), vectors_by_id(clean_dir, index_id)
    assert resumed.keys() == uninterrupted.keys() and len(resumed) == len(rows)
    assert all(np.array_equal(resumed[i], uninterrupted[i]) for i in resumed)
