"""Faults of the team stack: the database restarts between two commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow]


def test_the_next_command_works_after_postgresql_restarts(stack, tiny_model: Path, unique_name: str) -> None:
    if stack.name != "server":
        pytest.skip("a PostgreSQL restart is a fault of the server stack")

    def embedops(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "embedops", *args, "--json"], cwd=REPO, env=stack.env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    assert embedops("register", str(tiny_model), "--name", unique_name)["version"] == "1"
    restart = subprocess.run([str(REPO / ".ci" / "services"), "pg-restart"], capture_output=True, text=True,
                             timeout=120)
    assert restart.returncode == 0, restart.stderr
    # The tracking server's pooled connections died with the database; the ledger's too.
    assert embedops("promote", unique_name, "--version", "1", "--initial")["production"] == "1"
    assert [v["aliases"] for v in embedops("models", unique_name)["versions"]] == [["production"]]
    assert [m["action"] for m in embedops("history", unique_name)["moves"]] == ["promote"]
