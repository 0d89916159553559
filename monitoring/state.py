"""The trigger's state, in the ledger's database and under the ledger's per-model lock."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from monitoring.trigger import TriggerDecision, TriggerPolicy, TriggerState, decide_trigger
from registry.ledger import Ledger, format_ts, hold_schema_lock, parse_ts

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
        with ledger.engine.begin() as conn:
            hold_schema_lock(conn)
            metadata.create_all(conn)

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
            seen = conn.execute(sa.select(windows.c.id).where(windows.c.idempotency_key == key)).first() is not None
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
                last_retrain_at=parse_ts(state_row["last_retrain_at"]) if state_row["last_retrain_at"] else None,
                lease_expires=parse_ts(state_row["lease_expires"]) if state_row["lease_expires"] else None,
                breaker_open=bool(state_row["breaker_open"]),
                failures=int(state_row["failures"]),
            )
            decision = decide_trigger(policy, state, score, window_size)
            if decision.action == "retrain" and not can_retrain:
                decision = TriggerDecision("none", True, f"{decision.reason}; no retrain is configured")
            if not seen and window_size >= policy.min_window:
                conn.execute(
                    windows.insert().values(
                        ts=format_ts(now),
                        model=model,
                        version=version,
                        idempotency_key=key,
                        score=score,
                        drifted=decision.drifted,
                        action=decision.action,
                        reason=decision.reason,
                        run_id=run_id,
                    )
                )
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

    def finish(self, *, model: str, holder: str, succeeded: bool, policy: TriggerPolicy) -> None:
        """Release the lease; count a failure toward the breaker, or reset the count on success."""
        with self.ledger.locked(model) as conn:
            row = self._row(conn, model)
            failures = 0 if succeeded else int(row["failures"]) + 1
            values: dict = {"failures": failures, "breaker_open": failures >= policy.max_failures}
            if row["lease_holder"] == holder:
                values |= {"lease_holder": None, "lease_expires": None}
            conn.execute(retrains.update().where(retrains.c.model == model).values(**values))

    def reset_breaker(self, model: str) -> None:
        with self.ledger.locked(model) as conn:
            self._row(conn, model)
            conn.execute(retrains.update().where(retrains.c.model == model).values(failures=0, breaker_open=False))

    def status(self, model: str) -> dict:
        with self.ledger.locked(model) as conn:
            return self._row(conn, model)

    def window_count(self, model: str) -> int:
        with self.ledger.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(windows).where(windows.c.model == model)
                ).scalar_one()
            )
