"""`embedops status`: where a model stands, for the release manager and the on-call engineer.

One read of the registry (aliases, gate verdicts, the golden set each version was gated on), the
ledger (the last failure) and the drift trigger's state (last window, cooldown, lease, breaker).
Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from embedops.core.settings import Settings, store_source
from embedops.core.times import parse_iso
from monitoring.state import TriggerStore
from monitoring.trigger import TriggerPolicy
from registry import store
from registry.ledger import Ledger, Move, format_ts
from registry.promotion import GATE_GOLDEN, GATE_GOLDEN_SPLIT

FAILED_OUTCOMES = ("failed", "rejected", "conflict", "denied")


@dataclass(frozen=True)
class AliasStatus:
    alias: str
    version: str | None  # None: the alias is not set
    gate_verdict: str | None  # the last gate this version went through
    golden: str | None  # the golden set and split it was gated on
    golden_split: str | None
    ndcg_at_10: float | None  # the version's golden-set metric when it was registered or trained


@dataclass(frozen=True)
class DriftStatus:
    at: str  # when the window was recorded (ISO, UTC)
    version: str  # the production version that embedded it
    score: float
    drifted: bool
    action: str  # what the trigger did: retrain, none, failed (its retrain failed; the window stays open)
    reason: str
    run_id: str | None
    window_start: str | None  # the traffic time the window covered, from its drift run
    window_end: str | None


@dataclass(frozen=True)
class RetrainStatus:
    last_retrain_at: str | None
    cooldown_until: str | None  # with the default trigger policy's cooldown, or the drift config's
    running: bool  # a retrain holds the lease
    lease_holder: str | None
    lease_expires: str | None
    failures: int  # failed retrains in a row
    breaker_open: bool
    breaker_hint: str | None  # the command that closes an open breaker


@dataclass(frozen=True)
class Failure:
    at: str
    action: str
    outcome: str
    reason: str
    detail: str


@dataclass(frozen=True)
class ModelStatus:
    model: str
    aliases: list[AliasStatus]
    drift: DriftStatus | None  # the last drift window; None before the first drift job
    retrain: RetrainStatus
    last_failure: Failure | None  # the latest ledger row that did not succeed


@dataclass(frozen=True)
class StatusReport:
    """``status --json``."""

    store: str  # the tracking URI in use
    chosen_by: str  # which setting chose it
    ledger: str
    models: list[ModelStatus]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alias_status(name: str, alias: str, versions: dict[str, store.VersionInfo]) -> AliasStatus:
    version = next((v.version for v in versions.values() if alias in v.aliases), None)
    tags = versions[version].tags if version else {}
    return AliasStatus(
        alias=alias,
        version=version,
        gate_verdict=tags.get("gate_verdict"),
        golden=tags.get(GATE_GOLDEN),
        golden_split=tags.get(GATE_GOLDEN_SPLIT),
        ndcg_at_10=store.tag_number(tags, "ndcg_at_10", float),
    )


def retrain_status(name: str, state: dict[str, Any], policy: TriggerPolicy) -> RetrainStatus:
    last = state["last_retrain_at"]
    cooldown = None
    if last:
        cooldown = format_ts(parse_iso(last) + dt.timedelta(hours=policy.cooldown_hours))
    now = dt.datetime.now(dt.UTC)
    expires = state["lease_expires"]
    running = bool(state["lease_holder"]) and bool(expires) and parse_iso(expires) > now
    return RetrainStatus(
        last_retrain_at=last,
        cooldown_until=cooldown,
        running=running,
        lease_holder=state["lease_holder"],
        lease_expires=expires,
        failures=int(state["failures"]),
        breaker_open=bool(state["breaker_open"]),
        breaker_hint=f"embedops retrain --reset-breaker {name}" if state["breaker_open"] else None,
    )


def last_failure(history: list[Move]) -> Failure | None:
    failed = [m for m in history if m.outcome in FAILED_OUTCOMES]
    if not failed:
        return None
    m = failed[-1]
    return Failure(at=m.ts, action=m.action, outcome=m.outcome, reason=m.reason, detail=m.detail)


def model_status(name: str, ledger: Ledger, trigger_store: TriggerStore, policy: TriggerPolicy) -> ModelStatus:
    versions = {v.version: v for v in store.list_versions(name)}
    state, window = trigger_store.snapshot(name)
    drift = None
    if window is not None:
        params = store.client().get_run(window["run_id"]).data.params if window["run_id"] else {}
        drift = DriftStatus(
            at=window["ts"],
            version=window["version"],
            score=float(window["score"]),
            drifted=bool(window["drifted"]),
            action=window["action"],
            reason=window["reason"],
            run_id=window["run_id"],
            window_start=params.get("window_start"),
            window_end=params.get("window_end"),
        )
    return ModelStatus(
        model=name,
        aliases=[alias_status(name, alias, versions) for alias in store.ALIASES],
        drift=drift,
        retrain=retrain_status(name, state, policy),
        last_failure=last_failure(ledger.history(name)),
    )


def status(settings: Settings, names: list[str] | None = None, policy: TriggerPolicy | None = None) -> StatusReport:
    """Every registered model (or ``names``); ``policy`` is the drift config's trigger, for the cooldown."""
    ledger = Ledger(settings.ledger_url)
    trigger_store = TriggerStore(ledger)
    if not names:
        names = sorted(m.name for m in store.client().search_registered_models(max_results=1000))
    models = [model_status(name, ledger, trigger_store, policy or TriggerPolicy()) for name in names]
    return StatusReport(
        store=settings.tracking_uri, chosen_by=store_source(settings), ledger=settings.ledger_url, models=models
    )
