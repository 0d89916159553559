"""The retrain trigger: the pure decision on hand-built state, then its table under real concurrency."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest

from monitoring.state import TriggerStore
from monitoring.trigger import TriggerPolicy, TriggerState, decide_trigger
from registry.ledger import Ledger

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
POLICY = TriggerPolicy()


def state(**changes) -> TriggerState:
    values = dict(
        now=NOW,
        previous_scores=[],
        key_seen=False,
        last_retrain_at=None,
        lease_expires=None,
        breaker_open=False,
        failures=0,
    )
    return TriggerState(**(values | changes))


@pytest.mark.parametrize(
    "score, previous, action, reason",
    [
        (0.52, [], "none", "no drift"),
        (0.57, [], "none", "waiting for 2 windows in a row"),
        (0.57, [0.50], "none", "waiting for 2 windows in a row"),
        (0.57, [0.56], "retrain", "2 windows in a row >= 0.55"),
        (0.61, [], "retrain", "high threshold 0.6"),
    ],
)
def test_thresholds_and_consecutive_windows(score: float, previous: list, action: str, reason: str) -> None:
    decision = decide_trigger(POLICY, state(previous_scores=previous), score, 2000)
    assert decision.action == action and reason in decision.reason


def test_small_windows_never_trigger() -> None:
    decision = decide_trigger(POLICY, state(), 0.99, 999)
    assert decision.action == "none" and "insufficient data: 999 texts" in decision.reason


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"key_seen": True}, "already handled"),
        ({"breaker_open": True, "failures": 3}, "circuit breaker open after 3 failed retrains"),
        ({"lease_expires": NOW + dt.timedelta(minutes=5)}, "a retrain is already running"),
        ({"last_retrain_at": NOW - dt.timedelta(hours=23)}, "cooldown"),
    ],
)
def test_guards_stop_a_drifted_window(changes: dict, reason: str) -> None:
    decision = decide_trigger(POLICY, state(**changes), 0.9, 2000)
    assert decision.action == "none" and decision.drifted and reason in decision.reason


def test_expired_lease_and_elapsed_cooldown_allow_a_retrain() -> None:
    decision = decide_trigger(
        POLICY,
        state(lease_expires=NOW - dt.timedelta(seconds=1), last_retrain_at=NOW - dt.timedelta(hours=25)),
        0.9,
        2000,
    )
    assert decision.action == "retrain"


def replay(url: str, key: str, times: int, results: multiprocessing.Queue) -> None:
    store = TriggerStore(Ledger(url))
    retrains = sum(
        store.evaluate(
            model="m",
            version="1",
            key=key,
            score=0.7,
            window_size=2000,
            policy=POLICY,
            holder=f"p{multiprocessing.current_process().pid}",
        ).action
        == "retrain"
        for _ in range(times)
    )
    results.put(retrains)


@pytest.mark.slow
def test_a_window_replayed_1000_times_from_4_processes_retrains_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    TriggerStore(Ledger(url))  # create the tables once, before the race
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=replay, args=(url, "same-window", 250, results)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert sum(results.get(timeout=10) for _ in workers) == 1
    store = TriggerStore(Ledger(url))
    assert store.window_count("m") == 1
    # A new drifted window during the cooldown does not retrain, even after the lease is released.
    store.finish(model="m", holder="whoever", succeeded=True, policy=POLICY)
    later = store.evaluate(
        model="m", version="1", key="another-window", score=0.9, window_size=2000, policy=POLICY, holder="x"
    )
    assert later.action == "none" and ("cooldown" in later.reason or "already running" in later.reason)


def test_lease_release_and_circuit_breaker(tmp_path: Path) -> None:
    store = TriggerStore(Ledger(f"sqlite:///{tmp_path / 'ledger.db'}"))
    policy = TriggerPolicy(cooldown_hours=0, max_failures=2)
    first = store.evaluate(model="m", version="1", key="w1", score=0.9, window_size=2000, policy=policy, holder="a")
    assert first.action == "retrain"
    busy = store.evaluate(model="m", version="1", key="w2", score=0.9, window_size=2000, policy=policy, holder="b")
    assert "already running" in busy.reason
    store.finish(model="m", holder="a", succeeded=False, policy=policy)  # crashed: lease released, 1 failure
    second = store.evaluate(model="m", version="1", key="w3", score=0.9, window_size=2000, policy=policy, holder="c")
    assert second.action == "retrain"
    store.finish(model="m", holder="c", succeeded=False, policy=policy)  # 2 failures: breaker opens
    blocked = store.evaluate(model="m", version="1", key="w4", score=0.9, window_size=2000, policy=policy, holder="d")
    assert blocked.action == "none" and "circuit breaker open after 2" in blocked.reason
    store.reset_breaker("m")
    assert (
        store.evaluate(model="m", version="1", key="w5", score=0.9, window_size=2000, policy=policy, holder="e").action
        == "retrain"
    )


def test_a_failed_retrain_reopens_its_window_and_leaves_no_cooldown(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    store = TriggerStore(ledger)
    policy = TriggerPolicy(consecutive=1, max_failures=2)

    def window(holder: str) -> str:
        return store.evaluate(
            model="m", version="1", key="w1", score=0.9, window_size=2000, policy=policy, holder=holder
        ).action

    assert window("a") == "retrain"
    store.finish(model="m", holder="a", succeeded=False, policy=policy, key="w1", error="data not found", version="1")
    # The same window again: not "already handled", not in cooldown (nothing ran), so it retrains.
    assert window("b") == "retrain"
    store.finish(model="m", holder="b", succeeded=True, policy=policy)
    assert window("c") == "none"  # now it is handled
    state, last = store.snapshot("m")
    assert state["failures"] == 0 and state["last_retrain_at"] and last is not None and last["action"] == "retrain"
    rows = [(m.action, m.outcome, m.detail) for m in ledger.history("m")]
    assert rows == [("retrain", "failed", "data not found")]


def test_a_window_held_back_by_a_guard_retrains_once_the_guard_lifts(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    store = TriggerStore(ledger)
    policy = TriggerPolicy(consecutive=1, max_failures=1, cooldown_hours=0)
    first = store.evaluate(model="m", version="1", key="w1", score=0.9, window_size=2000, policy=policy, holder="a")
    assert first.action == "retrain"
    store.finish(model="m", holder="a", succeeded=False, policy=policy, key="w1", error="boom", version="1")
    held = store.evaluate(model="m", version="1", key="w2", score=0.9, window_size=2000, policy=policy, holder="b")
    assert held.action == "none" and "circuit breaker open after 1" in held.reason
    store.reset_breaker("m", actor="alice")
    again = store.evaluate(model="m", version="1", key="w2", score=0.9, window_size=2000, policy=policy, holder="c")
    assert again.action == "retrain"
    assert [(m.action, m.actor, m.reason) for m in ledger.history("m")][1:] == [
        ("breaker", "embedops-drift", "circuit breaker opened after 1 failed retrains"),
        ("breaker", "alice", "circuit breaker reset"),
    ]
    assert store.window_count("m") == 2  # a replay updates its window's row, never adds one
