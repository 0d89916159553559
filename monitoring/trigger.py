"""When drift may start a retrain: a pure decision over plain state, and the small table that holds it.

Guarantees: a window below the minimum size never triggers; the same window (idempotency key:
model version, reference digest, window digest, config digest) is acted on once however often it
is replayed; at most one retrain per model per cooldown (database clock); one retrain in flight
per model (a lease with an expiry, so a crashed job cannot block forever); and a circuit breaker
that stops automatic retraining after N failures in a row until a person resets it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The domain classifier's ROC-AUC at or above which a window counts as drifted (benchmarks/drift_quality.py:
# 20% new-topic traffic caught every time at 1k windows, no false alarm in 20 same-distribution windows).
RETRAIN_THRESHOLD = 0.55

Action = Literal["none", "retrain"]


class TriggerPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retrain_threshold: float = Field(
        RETRAIN_THRESHOLD, gt=0.5, le=1, description="AUC at or above this counts as drift"
    )
    consecutive: int = Field(2, ge=1, le=100, description="windows in a row over the threshold")
    high_threshold: float = Field(0.60, gt=0.5, le=1, description="one window at or above this is enough")
    cooldown_hours: float = Field(24, ge=0)
    min_window: int = Field(1000, ge=1)
    max_failures: int = Field(3, ge=1, description="failed retrains in a row that open the breaker")
    lease_minutes: float = Field(180, gt=0, description="a retrain's lease expires after this")


@dataclass(frozen=True)
class TriggerState:
    """What the database says, read under the model's lock."""

    now: dt.datetime
    previous_scores: Sequence[float]  # earlier windows' scores, oldest first
    key_seen: bool
    last_retrain_at: dt.datetime | None
    lease_expires: dt.datetime | None
    breaker_open: bool
    failures: int


@dataclass(frozen=True)
class TriggerDecision:
    action: Action
    drifted: bool
    reason: str

    def to_dict(self) -> dict[str, str | bool]:
        return asdict(self)


def decide_trigger(policy: TriggerPolicy, state: TriggerState, score: float, window_size: int) -> TriggerDecision:
    if window_size < policy.min_window:
        return TriggerDecision(
            "none", False, f"insufficient data: {window_size} texts, the minimum is {policy.min_window}"
        )
    streak = [*state.previous_scores[-(policy.consecutive - 1) :], score] if policy.consecutive > 1 else [score]
    over = score >= policy.retrain_threshold
    if score >= policy.high_threshold:
        drifted, why = True, f"score {score:.3f} >= high threshold {policy.high_threshold}"
    elif over and len(streak) >= policy.consecutive and all(s >= policy.retrain_threshold for s in streak):
        drifted, why = True, f"{policy.consecutive} windows in a row >= {policy.retrain_threshold}"
    elif over:
        return TriggerDecision(
            "none",
            False,
            f"score {score:.3f} >= {policy.retrain_threshold}, waiting for {policy.consecutive} windows in a row",
        )
    else:
        return TriggerDecision("none", False, f"no drift: score {score:.3f} < {policy.retrain_threshold}")
    if state.key_seen:
        return TriggerDecision("none", drifted, "this window was already handled (same idempotency key)")
    if state.breaker_open:
        return TriggerDecision(
            "none",
            drifted,
            f"circuit breaker open after {state.failures} failed retrains; "
            "a person must reset it (embedops retrain --reset-breaker NAME)",
        )
    if state.lease_expires is not None and state.lease_expires > state.now:
        return TriggerDecision(
            "none", drifted, f"a retrain is already running (lease until {state.lease_expires.isoformat()})"
        )
    if state.last_retrain_at is not None:
        ready = state.last_retrain_at + dt.timedelta(hours=policy.cooldown_hours)
        if ready > state.now:
            return TriggerDecision(
                "none",
                drifted,
                f"cooldown: last retrain {state.last_retrain_at.isoformat()}, next allowed {ready.isoformat()}",
            )
    return TriggerDecision("retrain", True, why)
