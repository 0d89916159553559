"""Long jobs say what they are doing: each phase on stderr, in order, and nothing but the result on
stdout. No timings are asserted: only which lines come, and in what order."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from typer.testing import CliRunner

from embedops.cli import app
from evaluation.golden import load_golden_set
from tests.conftest import HELPCENTER, read_jsonl, write_jsonl

runner = CliRunner()
PHASE = re.compile(r"^\[\s*\d+\.\d+s\] ")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def phases(stderr: str) -> list[str]:
    """The lines announced, in order: phase starts ("... ..."), their "done in ..." ends, one-line steps."""
    return [PHASE.sub("", line).strip() for line in stderr.splitlines() if PHASE.match(line)]


def assert_in_order(announced: list[str], expected: list[str | tuple[str, ...]]) -> None:
    """Each expected phase (a prefix, or a tuple of alternatives) starts an announced line, after the one before."""
    position = 0
    for prefix in expected:
        found = next((i for i in range(position, len(announced)) if announced[i].startswith(prefix)), None)
        assert found is not None, f"'{prefix}' not announced after position {position}: {announced}"
        position = found + 1
    # Every phase that started also said when it ended (a cached step is one line, not a phase).
    started = [line for line in announced if line.endswith(" ...")]
    assert len(started) == len([line for line in announced if line.startswith("done in")]), announced


def assert_result_only(stdout: str) -> dict:
    (line,) = stdout.strip().splitlines()  # one JSON object, nothing else
    assert not PHASE.match(line)
    return json.loads(line)


def sizes(split: str) -> tuple[int, int]:
    golden = load_golden_set(HELPCENTER, split)
    return len(golden.corpus_ids), len(golden.query_ids)


def test_evaluate_announces_its_phases_and_prints_only_the_result(store, tiny_model: Path) -> None:
    docs, queries = sizes("dev")
    args = ("evaluate", "--model", str(tiny_model), "--golden", str(HELPCENTER), "--split", "dev")
    code, out, err = run(*args, "--latency-calls", "5", "--no-cache", "--json")
    assert code == 0, err
    assert_result_only(out)
    assert_in_order(
        phases(err),
        [
            "opening the store",
            f"reading the golden set {HELPCENTER} [dev]",
            f"loading {tiny_model}",
            f"embedding {docs} documents with",
            f"embedding and scoring {queries} queries with",
            "latency: 5 single-text calls",
            "logging the evaluation run to MLflow",
        ],
    )
    # The terminal form: the table on stdout, still no phase line there.
    code, out, err = run(*args, "--latency-calls", "0")
    assert code == 0 and "ndcg_at_10" in out and not any(PHASE.match(line) for line in out.splitlines())
    assert "logging the evaluation run to MLflow" in err


def test_the_gate_and_drift_announce_their_phases(store, tiny_model: Path, tmp_path: Path, unique_name: str) -> None:
    name = unique_name
    docs, queries = sizes("test")  # the gate's default split
    for _ in range(2):
        assert run("register", str(tiny_model), "--name", name, "--json")[0] == 0
    assert run("promote", name, "--version", "1", "--initial", "--json")[0] == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text("min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: 10.0\nlatency_calls: 20\n")
    code, out, err = run(
        "promote", name, "--version", "2", "--golden", str(HELPCENTER), "--policy", str(policy), "--json"
    )
    assert code in (0, 3), err  # a verdict either way; the phases are the same
    assert assert_result_only(out)["decision"]["candidate_version"] == "2"
    assert_in_order(
        phases(err),
        [
            "opening the store",
            f"loading candidate models:/{name}/2",
            f"loading production models:/{name}/1",
            # The session's tiny weights may have been scored on this set before: then the cache answers.
            (f"embedding {docs} documents with models:/{name}/1", f"{docs} document vectors of models:/{name}/1"),
            f"embedding and scoring {queries} queries with models:/{name}/1",
            (f"embedding {docs} documents with models:/{name}/2", f"{docs} document vectors of models:/{name}/2"),
            f"embedding and scoring {queries} queries with models:/{name}/2",
            "latency: 20 paired single-text calls per version",
            f"deciding: paired permutation test over {queries} queries",
            "logging the decision and its HTML report to MLflow",
        ],
    )

    questions = [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    rng = random.Random(3)
    words = (
        "protein kinase receptor mutation cell tumour mice gene expression assay antibody pathway enzyme "
        "inhibitor plasma neuron sequencing mitochondria cohort dosage"
    ).split()

    def traffic(path: Path, texts: list[str]) -> Path:
        return write_jsonl(path, [{"text": t, "ts": "2026-11-20T10:00:00Z"} for t in texts])

    reference = traffic(tmp_path / "reference.jsonl", questions)
    current = traffic(
        tmp_path / "current.jsonl",
        [" ".join(rng.choices(words, k=rng.randint(4, 9))) for _ in range(60)] + questions[:20],
    )
    (tmp_path / "drift.yaml").write_text("report: always\ntrigger: {min_window: 10}\n")
    code, out, err = run(
        "drift", name, "--current", str(current), "--reference", str(reference),
        "--config", str(tmp_path / "drift.yaml"), "--json",
    )  # fmt: skip
    assert code in (0, 4), err
    assert assert_result_only(out)["report_logged"]
    assert_in_order(
        phases(err),
        [
            "opening the store",
            f"loading production models:/{name}/2",
            f"embedding {len(questions)} reference texts with models:/{name}/2",
            f"embedding 80 current texts with models:/{name}/2",
            f"scoring drift: a classifier between the windows, {len(questions) + 80} vectors",
            "building the Evidently drift report",
        ],
    )
