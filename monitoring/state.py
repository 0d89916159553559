"""The trigger's state, in the ledger's database and under the ledger's per-model lock."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import sqlalchemy as sa

from embedops.core.times import parse_iso
from monitoring.trigger import TriggerDecision, TriggerPolicy, TriggerState, decide_trigger
from registry.ledger import Ledger, format_ts

metadata = sa.MetaData()
windows = sa.Table(
    "drift_windows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("model", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.String(16), nullable=False),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(64)),
)
retrains = sa.Table(
    "retrain_state",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("last_retrain_at", sa.String(32)),
    sa.Column("lease_holder", sa.String(128)),
    sa.Column("lease_expires", sa.String(32)),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("breaker_open", sa.Boolean, nullable=False, default=False),
)


class TriggerStore:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        ledger.create_tables(metadata)

    def _row(self, conn: sa.Connection, model: str) -> dict:
        row = conn.execute(sa.select(retrains).where(retrains.c.model == model)).mappings().first()
        if row is None:
            conn.execute(retrains.insert().values(model=model, failures=0, breaker_open=False))
            return {
                "last_retrain_at": None,
                "lease_holder": None,
                "lease_expires": None,
                "failures": 0,
                "breaker_open": False,
            }
        return dict(row)

    def evaluate(
        self,
        *,
        model: str,
        version: str,
        key: str,
        score: float,
        window_size: int,
        policy: TriggerPolicy,
        holder: str,
        run_id: str | None = None,
        can_retrain: bool = True,
    ) -> TriggerDecision:
        """Decide and record in one locked transaction: two jobs can never both take the retrain.

        Without ``can_retrain`` (no retrain configured) a drifted window is recorded, nothing is leased.
        """
        with self.ledger.locked(model) as conn:
            now = self.ledger.now(conn)
            state_row = self._row(conn, model)
            # A window is handled once a retrain was started for it. One a guard held back (breaker,
            # lease, cooldown) or with no drift is scored again on a replay, and retrains once the guard lifts.
            earlier = conn.execute(
                sa.select(windows.c.id, windows.c.action).where(windows.c.idempotency_key == key)
            ).first()
            seen = earlier is not None and earlier.action == "retrain"
            previous = [
                r.score
                for r in conn.execute(
                    sa.select(windows.c.score)
                    .where(windows.c.model == model, windows.c.version == version)
                    .order_by(windows.c.id.desc())
                    .limit(max(policy.consecutive - 1, 0))
                ).all()
            ][::-1]
            state = TriggerState(
                now=now,
                previous_scores=previous,
                key_seen=seen,
                last_retrain_at=parse_iso(state_row["last_retrain_at"]) if state_row["last_retrain_at"] else None,
                lease_expires=parse_iso(state_row["lease_expires"]) if state_row["lease_expires"] else None,
                breaker_open=bool(state_row["breaker_open"]),
                failures=int(state_row["failures"]),
            )
            decision = decide_trigger(policy, state, score, window_size)
            if decision.action == "retrain" and not can_retrain:
                decision = TriggerDecision("none", True, f"{decision.reason}; no retrain is configured")
            row = dict(
                ts=format_ts(now),
                drifted=decision.drifted,
                action=decision.action,
                reason=decision.reason,
                run_id=run_id,
            )
            if earlier is None and window_size >= policy.min_window:
                conn.execute(
                    windows.insert().values(model=model, version=version, idempotency_key=key, score=score, **row)
                )
            elif earlier is not None and not seen:
                conn.execute(windows.update().where(windows.c.id == earlier.id).values(**row))
            if decision.action == "retrain":
                conn.execute(
                    retrains.update()
                    .where(retrains.c.model == model)
                    .values(
                        last_retrain_at=format_ts(now),
                        lease_holder=holder,
                        lease_expires=format_ts(now + dt.timedelta(minutes=policy.lease_minutes)),
                    )
                )
        return decision

    def finish(
        self,
        *,
        model: str,
        holder: str,
        succeeded: bool,
        policy: TriggerPolicy,
        key: str | None = None,
        error: str | None = None,
        version: str | None = None,
        actor: str = "embedops-drift",
    ) -> None:
        """Release the lease; on success reset the failure count, on failure count it toward the breaker.

        A failed retrain leaves the world as if it had not been tried, but for the count and the record:
        its window is reopened (the same window retries once the cause is fixed), the cooldown runs from
        the last retrain that ran, and the failure, and the breaker opening if it does, are ledger rows.
        """
        with self.ledger.locked(model) as conn:
            row = self._row(conn, model)
            failures = 0 if succeeded else int(row["failures"]) + 1
            opens = not succeeded and failures >= policy.max_failures and not row["breaker_open"]
            values: dict[str, object] = {"failures": failures, "breaker_open": failures >= policy.max_failures}
            if row["lease_holder"] == holder:
                values |= {"lease_holder": None, "lease_expires": None}
            if not succeeded:
                values["last_retrain_at"] = self._last_retrain_that_ran(conn, model)
                if key is not None:
                    self._reopen_window(conn, key, error or "the retrain failed")
                why = f"retrain failed ({failures} in a row, the breaker opens at {policy.max_failures})"
                self._record(conn, model, actor, "retrain", why, (error or "")[:1000], failed_from=version)
            if opens:
                why = f"circuit breaker opened after {failures} failed retrains"
                self._record(
                    conn, model, actor, "breaker", why, f"reset with: embedops retrain --reset-breaker {model}"
                )
            conn.execute(retrains.update().where(retrains.c.model == model).values(**values))

    def _record(
        self,
        conn: sa.Connection,
        model: str,
        actor: str,
        action: Literal["retrain", "breaker"],
        reason: str,
        detail: str,
        *,
        failed_from: str | None = None,
    ) -> None:
        """A ledger row for the trigger's own events: a failed retrain (from the production version it
        would have replaced, on ``candidate``), or the breaker opening or being reset (no alias: ``-``)."""
        self.ledger.append(
            conn,
            actor=actor,
            action=action,
            model=model,
            alias="candidate" if action == "retrain" else "-",
            from_version=failed_from,
            to_version=None,
            outcome="failed" if action == "retrain" else "success",
            reason=reason,
            decision_run_id=None,
            detail=detail,
        )

    def _last_retrain_that_ran(self, conn: sa.Connection, model: str) -> str | None:
        """When the last retrain that trained and was gated was recorded: what the cooldown counts from."""
        ran = [m.ts for m in self.ledger.history(model, conn=conn) if m.action == "retrain" and m.outcome != "failed"]
        return ran[-1] if ran else None

    @staticmethod
    def _reopen_window(conn: sa.Connection, key: str, error: str) -> None:
        # The row stays (its score counts toward consecutive windows), under a key no run will send again.
        row = conn.execute(sa.select(windows.c.id).where(windows.c.idempotency_key == key)).first()
        if row is not None:
            conn.execute(
                windows.update()
                .where(windows.c.id == row.id)
                .values(idempotency_key=f"{key[:40]}:failed:{row.id}", action="failed", reason=error[:2000])
            )

    def reset_breaker(self, model: str, actor: str = "embedops") -> None:
        with self.ledger.locked(model) as conn:
            row = self._row(conn, model)
            conn.execute(retrains.update().where(retrains.c.model == model).values(failures=0, breaker_open=False))
            was = f"it was {'open' if row['breaker_open'] else 'closed'} after {row['failures']} failed retrains"
            self._record(conn, model, actor, "breaker", "circuit breaker reset", was)

    def status(self, model: str) -> dict:
        with self.ledger.locked(model) as conn:
            return self._row(conn, model)

    def snapshot(self, model: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(the retrain state, the last drift window recorded) of ``model``, read without writing."""
        with self.ledger.engine.connect() as conn:
            row = conn.execute(sa.select(retrains).where(retrains.c.model == model)).mappings().first()
            window = (
                conn.execute(sa.select(windows).where(windows.c.model == model).order_by(windows.c.id.desc()).limit(1))
                .mappings()
                .first()
            )
        state: dict[str, Any] = (
            dict(row)
            if row
            else {
                "model": model,
                "last_retrain_at": None,
                "lease_holder": None,
                "lease_expires": None,
                "failures": 0,
                "breaker_open": False,
            }
        )
        return state, dict(window) if window else None

    def window_count(self, model: str) -> int:
        with self.ledger.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(windows).where(windows.c.model == model)
                ).scalar_one()
            )
