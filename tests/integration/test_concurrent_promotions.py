"""Twenty release managers promote at once against the same production: exactly one wins, on both stacks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from registry.ledger import Ledger
from registry.store import alias_version
from tests.conftest import start_embedops

pytestmark = [pytest.mark.slow]
RACERS = 20


def race(stack, name: str, versions: Iterable[int], *gate: str) -> list[tuple[int, str, str]]:
    """One `embedops promote` process per version, all started at once, each as release manager rm<version>
    and only if production is still v1: the exit code, stdout and stderr of each."""
    env = stack.env | {"OMP_NUM_THREADS": "1"}
    if_v1 = ("--reason", "race", "--expect-production", "1")
    racers = [
        start_embedops("promote", name, "--version", str(v), *gate, *if_v1, "--actor", f"rm{v}", "--json", env=env)
        for v in versions
    ]
    return [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in racers]


def test_twenty_simultaneous_promotions_have_exactly_one_winner(stack, tiny_model: Path, unique_name: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["register", str(tiny_model), "--name", unique_name]).exit_code == 0
    assert runner.invoke(app, ["promote", unique_name, "--version", "1", "--initial"]).exit_code == 0
    client = MlflowClient()
    first = client.get_model_version(unique_name, "1")
    for _ in range(RACERS):  # more versions of the same logged model: cheap, and each is a real version
        client.create_model_version(
            unique_name,
            source=first.source,
            run_id=first.run_id,
            tags=first.tags,
            model_id=first.model_id or first.source.removeprefix("models:/"),
        )

    # Every racer was gated against v1 and moves only if production is still v1.
    results = race(stack, unique_name, range(2, RACERS + 2), "--skip-gate")

    winners = [json.loads(out)["production"] for code, out, _ in results if code == 0]
    losers = [err for code, _, err in results if code != 0]
    assert len(winners) == 1, [err[-300:] for _, _, err in results]
    assert len(losers) == RACERS - 1
    assert all("production moved from v1 to v" in err for err in losers), [
        e[-400:] for e in losers if "production moved" not in e
    ]
    assert alias_version(unique_name, "production") == winners[0]
    assert alias_version(unique_name, "previous") == "1"

    ledger = Ledger(stack.ledger_url)  # SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock per model
    rows = [m for m in ledger.history(unique_name) if m.reason == "gate skipped: race"]
    assert sorted(m.outcome for m in rows) == ["conflict"] * (RACERS - 1) + ["success"]
    (success,) = [m for m in rows if m.outcome == "success"]
    assert (success.from_version, success.to_version) == ("1", winners[0])
    assert all(m.from_version == winners[0] for m in rows if m.outcome == "conflict")


def test_two_gated_promotions_race_and_exactly_one_wins(
    stack, tiny_model: Path, unique_name: str, tmp_path: Path
) -> None:
    """Two release managers each gate a different candidate against v1 at the same time: both pass
    the full gate, the compare-and-set lets one move production and records the other as a conflict."""
    from tests.conftest import HELPCENTER

    runner = CliRunner()
    for _ in range(3):
        assert runner.invoke(app, ["register", str(tiny_model), "--name", unique_name]).exit_code == 0
    assert runner.invoke(app, ["promote", unique_name, "--version", "1", "--initial"]).exit_code == 0
    policy = tmp_path / "lenient.yaml"
    policy.write_text("min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: null\nn_resamples: 200\n")

    results = race(stack, unique_name, (2, 3), "--golden", str(HELPCENTER), "--policy", str(policy))

    winners = [json.loads(out)["production"] for code, out, _ in results if code == 0]
    losers = [err for code, _, err in results if code != 0]
    assert len(winners) == 1 and len(losers) == 1, [err[-400:] for _, _, err in results]
    assert "production moved from v1 to v" in losers[0], losers[0][-400:]
    assert alias_version(unique_name, "production") == winners[0]
    assert alias_version(unique_name, "previous") == "1"
    client = MlflowClient()
    assert [client.get_model_version(unique_name, v).tags.get("gate_verdict") for v in ("2", "3")] == ["pass"] * 2

    rows = [m for m in Ledger(stack.ledger_url).history(unique_name) if m.reason == "race"]
    assert sorted(m.outcome for m in rows) == ["conflict", "success"]
    assert all(m.decision_run_id for m in rows)  # both moves name the gate decision they acted on
