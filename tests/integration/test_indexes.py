"""Indexes move with the model: built, refused when missing, synced, searched, swapped back, collected.

One suite over both stacks (the embedded store and PostgreSQL + mlflow server), with three tiny
models whose weights differ (seeds 0, 1, 2) so every version needs its own index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedops.cli import app
from registry.ledger import Ledger
from registry.store import alias_version
from tests.conftest import HELPCENTER, read_jsonl, write_jsonl

runner = CliRunner()
QUERY = "how do I reset my password?"


def cli(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [*args, "--json"])
    payload = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, payload, result.stderr


@pytest.fixture(scope="module")
def three_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three tiny models with the same tokenizer and different weights."""
    from tests.tiny_model import build_tiny_model

    texts = [d["title"] + " " + d["text"] for d in read_jsonl(HELPCENTER / "corpus.jsonl")]
    texts += [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    return [build_tiny_model(tmp_path_factory.mktemp(f"tiny{seed}"), texts, seed=seed) for seed in range(3)]


def last_move(stack, name: str):
    return Ledger(stack.ledger_url).history(name)[-1]


def test_indexes_move_with_production_on_promote_and_rollback(
    stack, three_models: list[Path], unique_name: str, tmp_path: Path
) -> None:
    name, corpus = unique_name, f"hc-{unique_name[-6:]}"
    for folder in three_models:
        assert cli("register", str(folder), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial", "--reason", "first")[0] == 0
    code, added, err = cli("corpus", "add", corpus, str(HELPCENTER))
    assert code == 0, err
    assert (added["version"], added["rows"]) == (1, 150)

    code, built, err = cli("index", "build", name, "--version", "1", "--corpus", corpus)
    assert code == 0, err
    assert (built["state"], built["rows"], built["index_id"]) == ("verified", 150, f"{name}-v1-{corpus}")
    assert built["run_id"] and not built["already"]
    assert cli("index", "build", name, "--version", "1", "--corpus", corpus)[1]["already"]

    # Production serves the corpus, so v2 may not take over without an index of its own ...
    code, _, err = cli("promote", name, "--version", "2", "--skip-gate", "--reason", "hotfix")
    assert code == 1 and "no index of corpus" in err and "--build-index" in err
    assert alias_version(name, "production") == "1"
    assert (last_move(stack, name).outcome, last_move(stack, name).to_version) == ("failed", "2")
    # ... and with --build-index it gets one, and the ledger row names it.
    code, moved, err = cli("promote", name, "--version", "2", "--skip-gate", "--reason", "hotfix", "--build-index")
    assert code == 0, err
    assert moved["production"] == "2" and moved["indexes"][0].startswith(
        f"{corpus}: index {name}-v2-{corpus}, 150 rows"
    )
    assert last_move(stack, name).outcome == "success"
    assert f"indexes: {name}-v2-{corpus}@{corpus}v1" in last_move(stack, name).detail

    code, found, err = cli("search", name, QUERY, "--corpus", corpus, "-k", "3")
    assert code == 0, err
    assert (found["version"], found["index_id"]) == ("2", f"{name}-v2-{corpus}")
    assert len(found["answers"][0]["hits"]) == 3
    code, older, _ = cli("search", name, QUERY, "--corpus", corpus, "--version", "1", "-k", "3")
    assert code == 0 and older["index_id"] == f"{name}-v1-{corpus}"
    assert [h["id"] for h in older["answers"][0]["hits"]] != [h["id"] for h in found["answers"][0]["hits"]]

    # The corpus changes: the indexes lag until synced; a promotion builds at the latest version.
    documents = read_jsonl(HELPCENTER / "corpus.jsonl")
    changes = write_jsonl(
        tmp_path / "changes.jsonl",
        [
            {"op": "delete", "_id": documents[0]["_id"], "ts": "2026-12-01T09:00:00Z"},
            {"_id": "new-1", "title": "Passwords", "text": "Reset a forgotten password", "ts": "2026-12-01T09:05:00Z"},
        ],
    )
    code, updated, err = cli("corpus", "update", corpus, str(changes))
    assert code == 0 and (updated["version"], updated["added"], updated["deleted"]) == (2, 1, 1), err
    status = {r["index_id"]: r for r in cli("index", "status", name)[1]["indexes"]}
    assert status[f"{name}-v2-{corpus}"]["latest_corpus_version"] == 2
    assert status[f"{name}-v2-{corpus}"]["freshness_lag_s"] > 0

    code, third, err = cli("promote", name, "--version", "3", "--skip-gate", "--reason", "again", "--build-index")
    assert code == 0 and f"{name}-v3-{corpus}, 150 rows of {corpus} v2" in third["indexes"][0], err
    # The rollback target's index is brought to the latest corpus version before it serves again.
    code, back, err = cli("rollback", name, "--reason", "worse answers")
    assert code == 0 and back["production"] == "2", err
    assert f"{name}-v2-{corpus}@{corpus}v2" in last_move(stack, name).detail
    code, after, _ = cli("search", name, "Reset a forgotten password", "--corpus", corpus, "-k", "150")
    ids = [h["id"] for h in after["answers"][0]["hits"]]
    assert after["corpus_version"] == 2 and "new-1" in ids and documents[0]["_id"] not in ids

    # gc keeps the last production version and what an alias points at (production v2, previous v1).
    code, collected, err = cli("index", "gc", name, "--keep", "1")
    assert code == 0, err
    assert collected["removed"] == [f"{name}-v3-{corpus}"]
    assert collected["kept"] == sorted([f"{name}-v1-{corpus}", f"{name}-v2-{corpus}"])
    code, _, err = cli("search", name, QUERY, "--corpus", corpus, "--version", "3")
    assert code == 1 and "has no index of corpus" in err


@pytest.mark.slow
def test_serving_swaps_model_and_index_together_under_load(stack, three_models: list[Path], unique_name: str) -> None:
    """Four clients search while production moves v1 -> v2 -> v3 and rolls back to v2: every answer's
    model version is its index's, no request fails, and the server ends on v2 without a restart."""
    import threading
    import time
    import urllib.error
    import urllib.request

    from tests.conftest import free_port, start_embedops, wait_until_answers

    name, corpus = unique_name, f"hc-{unique_name[-6:]}"
    for folder in three_models:
        assert cli("register", str(folder), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial", "--reason", "first")[0] == 0
    assert cli("corpus", "add", corpus, str(HELPCENTER))[0] == 0
    assert cli("index", "build", name, "--version", "1", "--corpus", corpus)[0] == 0

    port = free_port()
    env = stack.env | {"EMBEDOPS_SERVE_POLL_S": "0.3"}
    server = start_embedops("serve", name, "--port", str(port), "--json", env=env)
    url = f"http://127.0.0.1:{port}"
    answers: list[tuple[str, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        body = json.dumps({"queries": [f"{QUERY} ({n})"], "k": 5}).encode()
        while not stop.is_set():
            request = urllib.request.Request(f"{url}/search", data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answer = json.loads(response.read())["answers"][0]
                answers.append((answer["model_version"], answer["index_id"]))
            except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                failures.append(repr(exc))

    def served_version() -> str:
        with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
            return json.loads(response.read())["version"]

    def wait_for(version: str) -> None:
        deadline = time.monotonic() + 120
        while served_version() != version:
            assert time.monotonic() < deadline, f"the server never swapped to v{version}"
            time.sleep(0.2)

    try:
        assert json.loads(server.stdout.readline())["version"] == "1"
        wait_until_answers(f"{url}/health", server, what="the search server", log=lambda: server.stderr.read())
        clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in clients:
            thread.start()
        for version in ("2", "3"):
            code, _, err = cli(
                "promote", name, "--version", version, "--skip-gate", "--reason", "load", "--build-index"
            )
            assert code == 0, err
            wait_for(version)
        assert cli("rollback", name, "--reason", "load test")[0] == 0
        wait_for("2")
        time.sleep(1)
        stop.set()
        for thread in clients:
            thread.join(timeout=120)
        with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
            metrics = response.read().decode()
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=60)
    assert failures == []
    mixed = [(v, i) for v, i in answers if i != f"{name}-v{v}-{corpus}"]
    assert mixed == [] and {v for v, _ in answers} == {"1", "2", "3"}, (len(answers), mixed[:5])
    assert f'embedops_search_seconds_count{{index_id="{name}-v3-{corpus}",model_version="3"}}' in metrics


def test_doctor_finds_a_tampered_or_unfinished_index_and_serving_refuses_it(
    store, three_models: list[Path], unique_name: str
) -> None:
    from embedops.core.errors import VectorIndexError
    from indexing.build import BuildOptions
    from registry.indexes import build_in, roots_of
    from registry.ledger import Ledger
    from registry.live_search import Follower, load_live
    from registry.serving_metrics import SearchMetrics
    from registry.store import get_version

    name, corpus = unique_name, f"hc-{unique_name[-6:]}"
    for folder in three_models[:2]:
        assert cli("register", str(folder), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial", "--reason", "first")[0] == 0
    assert cli("corpus", "add", corpus, str(HELPCENTER))[0] == 0
    assert cli("index", "build", name, "--version", "1", "--corpus", corpus)[0] == 0
    assert cli("index", "build", name, "--version", "2", "--corpus", corpus)[0] == 0
    roots = roots_of(store)
    follower = Follower(
        name,
        "production",
        roots,
        Ledger(store.ledger_url),
        load_live(roots, get_version(name, "1"), None),
        None,
        SearchMetrics(),
    )

    data = sorted((store.index_root / f"{name}-v2-{corpus}.lance" / "data").iterdir())[0]
    data.write_bytes(data.read_bytes()[:-1] + bytes([data.read_bytes()[-1] ^ 0xFF]))
    code, report, _ = cli("doctor", "--model", name)
    assert code == 6 and [(f["kind"], f["subject"]) for f in report["findings"]] == [
        ("tampered_index", f"{name}/v2/{corpus}")
    ]
    code, _, err = cli("search", name, QUERY, "--corpus", corpus, "--version", "2")
    assert code == 1 and "not as verified" in err
    # Serving refuses it too: production moved to v2 outside embedops' checks keeps v1 serving.
    with pytest.raises(VectorIndexError, match="not as verified"):
        load_live(roots, get_version(name, "2"), None)
    Ledger(store.ledger_url).record(
        actor="test", action="promote", model=name, alias="production", from_version="1", to_version="2",
        outcome="success", reason="moved by hand",
    )  # fmt: skip
    assert not follower.refresh() and follower.live.version == "1"
    assert follower.health()["status"] == "stale" and "not as verified" in follower.health()["error"]

    # An unfinished build (the process died after two chunks) is found and resumed by --fix.
    def die(chunk: int) -> None:
        if chunk == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_in(roots, name, "2", corpus, options=BuildOptions(chunk_size=32), rebuild=True, after_chunk=die)
    code, report, _ = cli("doctor", "--model", name)
    assert ("unfinished_index", f"{name}/v2/{corpus}") in [(f["kind"], f["subject"]) for f in report["findings"]]
    code, fixed, _ = cli("doctor", "--model", name, "--fix")
    assert fixed["fixed"] >= 1 and not [f for f in fixed["findings"] if "index" in f["kind"] and not f["fixed"]]
    assert follower.refresh() and follower.live.version == "2" and follower.health()["status"] == "ok"
