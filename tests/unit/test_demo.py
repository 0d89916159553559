"""The demo's bookkeeping: expected vs actual outcomes, a fresh home, the broken pairs file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedops.core.errors import ConfigError, GoldenSetError
from embedops.demo import MARKER, Step, prepare_home, run_steps, shuffled_pairs
from tests.conftest import HELPCENTER, read_jsonl


def test_each_outcome_is_compared_and_an_error_stops_the_rest() -> None:
    def fail() -> Step:
        raise GoldenSetError("golden set vanished")

    plan = [
        ("one", "production v1", lambda: Step("", "", actual="production v1")),
        ("two", "gate pass", lambda: Step("", "", actual="gate reject")),
        ("three", "no drift", fail),
        ("four", "production v2", lambda: Step("", "", actual="production v2")),
    ]
    said: list[str] = []
    steps = run_steps(plan, said.append)
    assert [(s.title, s.ok) for s in steps] == [("one", True), ("two", False), ("three", False), ("four", False)]
    assert steps[2].actual == "error: golden set vanished" and steps[3].actual == "not run"
    assert any("EXPECTED: gate pass" in line for line in said)


def test_a_home_is_fresh_and_only_a_demo_home_is_replaced(tmp_path: Path) -> None:
    home = prepare_home(tmp_path / "demo")
    (home / "mlflow.db").write_text("old state")
    assert prepare_home(home) == home and not (home / "mlflow.db").exists() and (home / MARKER).exists()

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an earlier demo's home"):
        prepare_home(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_shuffled_pairs_keep_every_text_but_break_nearly_every_pair(tmp_path: Path) -> None:
    source = HELPCENTER / "train_pairs.jsonl"
    broken = read_jsonl(shuffled_pairs(source, tmp_path / "x" / "shuffled.jsonl"))
    original = read_jsonl(source)
    assert [r["anchor"] for r in broken] == [r["anchor"] for r in original]
    assert sorted(r["positive"] for r in broken) == sorted(r["positive"] for r in original)
    kept = sum(a == b for a, b in zip(broken, original, strict=True))
    assert kept / len(original) < 0.05, json.dumps(kept)
