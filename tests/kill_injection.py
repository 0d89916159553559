"""SIGKILL fault injection: jobs killed at random points never leave the registry and ledger wrong.

Shared by the CI test (a few rounds) and ``benchmarks/kill_injection.py`` (30+). Each round starts
one real ``embedops`` job in a subprocess (train+register, register, promote, rollback) on one
model whose history grows round by round, kills it with SIGKILL after a random delay (or lets it
finish), then checks, before any repair:

1. every alias points to a version whose files pass the sha256 manifest check;
2. every alias position is on record (production, candidate and ``previous``, which must be where
   a rollback would go): where the ledger's successful moves leave it, or an end
   of a ``pending`` move whose job died halfway (no alias move without its ledger row);

and after ``embedops doctor --fix``: a second doctor run finds nothing, and 1-2 hold with every
alias equal to its last successful ledger move.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JOBS = ("train", "register", "promote", "rollback")


@dataclass
class Round:
    job: str
    delay_s: float
    killed: bool
    exit_code: int | None
    violations: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # what doctor --fix settled: kinds of its findings
    doctor_findings: list[str] = field(default_factory=list)


def job_argv(job: str, name: str, tiny_model: Path, pairs: Path, rng: random.Random) -> list[str]:
    from registry.store import list_versions

    if job == "train":
        return [
            "train",
            "--data",
            str(pairs),
            "--base-model",
            str(tiny_model),
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--name",
            name,
        ]
    if job == "register":
        return ["register", str(tiny_model), "--name", name]
    if job == "promote":
        others = [v.version for v in list_versions(name) if "production" not in v.aliases]
        return ["promote", name, "--version", rng.choice(others), "--skip-gate", "--reason", "kill test"]
    return ["rollback", name, "--reason", "kill test"]  # refused (exit 1) until something was promoted over v1


def run_killed(
    argv: list[str], env: dict[str, str], delay_s: float | None, watch: Path | None = None
) -> tuple[bool, int | None]:
    """Start ``embedops ARGV``; SIGKILL its whole process group after ``delay_s`` (None: let it finish),
    or, with ``watch`` (the SQLite ledger), the moment a new ``pending`` row appears in it: inside
    the few milliseconds between a move's record and its outcome, which timed kills rarely hit."""
    import sqlite3

    def newest_pending() -> int:
        with contextlib.closing(sqlite3.connect(watch, timeout=30)) as db:
            return db.execute("SELECT coalesce(max(id), 0) FROM alias_moves WHERE outcome = 'pending'").fetchone()[0]

    before = newest_pending() if watch else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "embedops", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + (delay_s if delay_s is not None else 600)
    while process.poll() is None:
        if time.monotonic() > deadline or (watch and newest_pending() > before):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True, None
        time.sleep(0.001 if watch else 0.02)
    return False, process.returncode


def violations(ledger_url: str, name: str) -> list[str]:
    """Invariants 1-2 on the registry and ledger as they are now."""
    from registry import store
    from registry.ledger import Ledger, as_settled, interrupted, recorded_position, rollback_target
    from registry.verified import alias_file_problems

    found = []
    ledger = Ledger(ledger_url)
    rows = ledger.history(name, settled_pending=True)
    halfway = interrupted(rows)
    for alias, version, problem in alias_file_problems(name):
        if problem:
            found.append(f"{alias} -> v{version}, whose files fail their check: {problem}")
    for alias in store.ALIASES:
        version = store.alias_version(name, alias)
        recorded = recorded_position(rows, alias)
        # A move killed halfway may have moved its alias (production: to_version; previous, which
        # follows production: where a rollback goes once that move counts) or not yet.
        if alias == store.PREVIOUS:
            halfway_ends = {rollback_target(as_settled(rows, m)) for m in halfway if m.alias == store.PRODUCTION}
        else:
            halfway_ends = {end for m in halfway if m.alias == alias for end in (m.from_version, m.to_version)}
        if version != recorded and version not in halfway_ends:
            found.append(
                f"{alias} -> v{version}, but the ledger says v{recorded} and no interrupted move names v{version}"
            )
    ledger.dispose()
    return found


def one_round(
    rng: random.Random,
    *,
    name: str,
    env: dict[str, str],
    ledger_url: str,
    tiny_model: Path,
    pairs: Path,
    durations: dict[str, float],
) -> Round:
    """One job killed at a random point of its usual duration (a tenth of rounds: not killed).

    Half the kills fall anywhere in the run, half in its last fifth, where the version is
    registered and aliases move: uniform kills mostly land in Python's imports. Half the promotions
    and rollbacks are killed the moment their pending ledger row appears instead."""
    from registry.doctor import examine
    from registry.ledger import Ledger

    job = rng.choice(JOBS)
    argv = job_argv(job, name, tiny_model, pairs, rng)
    late = rng.random() < 0.5
    delay = None if rng.random() < 0.1 else rng.uniform(0.8 if late else 0.1, 1.0) * durations[job]
    watch = None
    if job in ("promote", "rollback") and delay is not None and rng.random() < 0.5 and ledger_url.startswith("sqlite"):
        watch, delay = Path(ledger_url.removeprefix("sqlite:///")), durations[job] * 2
        job += " @pending"
    killed, code = run_killed(argv, env, delay, watch)
    result = Round(job, 0.0 if watch else delay or 0.0, killed, code, violations(ledger_url, name))
    ledger = Ledger(ledger_url)
    repaired = examine(ledger, models=[name], stale_hours=0.0, fix=True, actor="kill-test-doctor")
    result.fixed = [f.kind for f in repaired.findings if f.fixed]
    after = examine(ledger, models=[name], stale_hours=0.0, fix=False, actor="kill-test-doctor")
    ledger.dispose()
    result.doctor_findings = [f"{f.kind} {f.subject}: {f.detail}" for f in after.findings]
    result.violations += [f"after doctor --fix: {v}" for v in violations(ledger_url, name)]
    return result


# Unkilled durations on 2 cores, at the fast end of what was measured (benchmarks/kill_injection.py
# measures them each run): where CI kills. Too long, and late kills land after the job has finished.
TYPICAL_S = {"train": 12.0, "register": 10.0, "promote": 3.2, "rollback": 3.2}


def prepare(name: str, env: dict[str, str], tiny_model: Path, pairs: Path, *, measure: bool) -> dict[str, float]:
    """Versions 1 and 2, v1 in production; with ``measure`` each job once unkilled, whose duration
    sets the kill window."""
    register = ["register", str(tiny_model), "--name", name]
    for argv in (register, register, ["promote", name, "--version", "1", "--initial"]):
        subprocess.run([sys.executable, "-m", "embedops", *argv], cwd=REPO, env=env, check=True, capture_output=True)
    if not measure:
        return dict(TYPICAL_S)
    durations, rng = {}, random.Random(0)
    for job in JOBS:
        started = time.monotonic()
        _, code = run_killed(job_argv(job, name, tiny_model, pairs, rng), env, None)
        assert code == 0, f"{job} failed before any kill"
        durations[job] = time.monotonic() - started
    return durations
