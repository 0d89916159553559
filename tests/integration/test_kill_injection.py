"""Jobs killed with SIGKILL at random points (a few rounds here; `benchmarks/kill_injection.py` runs 30+)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.kill_injection import one_round, prepare

pytestmark = [pytest.mark.slow]
# At least ROUNDS rounds, and more until one job was really killed: a timed kill can come after a
# job that ran faster than usual has finished, and a round with no kill tests nothing.
ROUNDS, MAX_ROUNDS = 3, 8


def test_killed_jobs_never_leave_an_unrecorded_or_broken_alias(
    tiny_model: Path, pairs_file: Path, tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedops.core.settings import configure

    monkeypatch.setenv("EMBEDOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = configure()
    env = dict(os.environ)
    durations = prepare(unique_name, env, tiny_model, pairs_file, measure=False)
    rng = random.Random(int(os.environ.get("EMBEDOPS_KILL_SEED", "7")))
    rounds = []
    while len(rounds) < ROUNDS or (not any(r.killed for r in rounds) and len(rounds) < MAX_ROUNDS):
        rounds.append(
            one_round(
                rng,
                name=unique_name,
                env=env,
                ledger_url=settings.ledger_url,
                tiny_model=tiny_model,
                pairs=pairs_file,
                durations=durations,
            )
        )
    assert any(r.killed for r in rounds), [(r.job, r.delay_s, r.exit_code) for r in rounds]
    assert [(r.job, r.violations, r.doctor_findings) for r in rounds] == [(r.job, [], []) for r in rounds]
    monkeypatch.undo()
    configure()
