"""Twenty release managers promote at once against the same production: exactly one wins, on both stacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from registry.ledger import Ledger
from registry.store import alias_version
from tests.conftest import REPO

pytestmark = [pytest.mark.slow]
RACERS = 20


def test_twenty_simultaneous_promotions_have_exactly_one_winner(stack, tiny_model: Path, unique_name: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["register", str(tiny_model), "--name", unique_name]).exit_code == 0
    assert runner.invoke(app, ["promote", unique_name, "--version", "1", "--initial"]).exit_code == 0
    client = MlflowClient()
    first = client.get_model_version(unique_name, "1")
    for _ in range(RACERS):  # more versions of the same logged model: cheap, and each is a real version
        client.create_model_version(unique_name, source=first.source, run_id=first.run_id, tags=first.tags,
                                    model_id=first.model_id or first.source.removeprefix("models:/"))

    # Every racer was gated against v1 and moves only if production is still v1.
    env = stack.env | {"OMP_NUM_THREADS": "1"}
    racers = [
        subprocess.Popen([sys.executable, "-m", "embedops", "promote", unique_name, "--version", str(v),
                          "--skip-gate", "--reason", "race", "--expect-production", "1", "--actor", f"rm{v}",
                          "--json"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for v in range(2, RACERS + 2)
    ]
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in racers]

    winners = [json.loads(out)["production"] for code, out, _ in results if code == 0]
    losers = [err for code, _, err in results if code != 0]
    assert len(winners) == 1, [err[-300:] for _, _, err in results]
    assert len(losers) == RACERS - 1
    assert all("production moved from v1 to v" in err for err in losers), [e[-400:] for e in losers
                                                                           if "production moved" not in e]
    assert alias_version(unique_name, "production") == winners[0]
    assert alias_version(unique_name, "previous") == "1"

    ledger = Ledger(stack.ledger_url)  # SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock per model
    rows = [m for m in ledger.history(unique_name) if m.reason == "gate skipped: race"]
    assert sorted(m.outcome for m in rows) == ["conflict"] * (RACERS - 1) + ["success"]
    (success,) = [m for m in rows if m.outcome == "success"]
    assert (success.from_version, success.to_version) == ("1", winners[0])
    assert all(m.from_version == winners[0] for m in rows if m.outcome == "conflict")
