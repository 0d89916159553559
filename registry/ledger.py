"""The audit ledger: one append-only row per alias move (or attempted move), in its own database.

It lives beside MLflow's store (``EMBEDOPS_HOME/ledger.db``) or in PostgreSQL, and it is also the
lock that makes alias moves compare-and-set. ``Ledger.mutex(model)`` holds a per-model lock that
dies with the process (a PostgreSQL session advisory lock, or a file lock beside the SQLite file)
across several committed rows: an alias move commits a ``pending`` row before MLflow's alias
changes and its outcome after, so a job killed in between leaves the move on record for
``embedops doctor`` to finish. ``Ledger.locked(model)`` is the same lock around one transaction.
A separate SQLite file from MLflow's, so holding the ledger's lock never blocks MLflow's own writes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from embedops.core.times import parse_iso

Action = Literal["promote", "rollback", "retrain", "candidate", "repair", "gate", "breaker"]
Outcome = Literal["success", "rejected", "conflict", "failed", "denied", "pending"]

metadata = sa.MetaData()
moves = sa.Table(
    "alias_moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.String(32), nullable=False),  # ISO-8601 UTC from the database clock
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("model", sa.String(64), nullable=False, index=True),
    sa.Column("alias", sa.String(32), nullable=False),
    sa.Column("from_version", sa.String(16)),
    sa.Column("to_version", sa.String(16)),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("decision_run_id", sa.String(64)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)


@dataclass(frozen=True)
class Move:
    id: int
    ts: str
    actor: str
    action: str
    model: str
    alias: str
    from_version: str | None
    to_version: str | None
    reason: str
    decision_run_id: str | None
    outcome: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let us issue BEGIN IMMEDIATE ourselves
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS alias_moves_no_update BEFORE UPDATE ON alias_moves "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS alias_moves_no_delete BEFORE DELETE ON alias_moves "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
]
APPEND_ONLY_POSTGRES = [
    "CREATE OR REPLACE FUNCTION alias_moves_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'the ledger is append-only'; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS alias_moves_append_only ON alias_moves",
    "CREATE TRIGGER alias_moves_append_only BEFORE UPDATE OR DELETE ON alias_moves "
    "FOR EACH ROW EXECUTE FUNCTION alias_moves_append_only()",
]


SCHEMA_LOCK_KEY = 0x656D6265  # "embe": one advisory lock for every embedops schema change


def hold_schema_lock(conn: Connection) -> None:
    """On PostgreSQL, serialize schema setup for this transaction: twenty workers starting at once
    otherwise race in CREATE TABLE / CREATE OR REPLACE FUNCTION ("tuple concurrently updated").
    SQLite's BEGIN IMMEDIATE already serializes it."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def format_ts(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def interrupted(rows: list[Move]) -> list[Move]:
    """The ``pending`` rows no outcome row followed: moves whose job died halfway."""
    settled: set[tuple[str, str, str | None, str | None]] = set()
    found = []
    for row in reversed(rows):
        key = (row.alias, row.action, row.from_version, row.to_version)
        if row.outcome in ("success", "failed"):
            settled.add(key)
        elif row.outcome == "pending" and key not in settled:
            found.append(row)
    return found[::-1]


def lock_key(model: str) -> int:
    return zlib.crc32(f"embedops:{model}".encode())


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        with self.engine.begin() as conn:
            hold_schema_lock(conn)
            metadata.create_all(conn)
            for statement in APPEND_ONLY_SQLITE if self.dialect == "sqlite" else APPEND_ONLY_POSTGRES:
                conn.exec_driver_sql(statement)

    def create_tables(self, tables: sa.MetaData) -> None:
        """Create another layer's tables in this database (the trigger's state, the purge records), under
        the same schema lock, so concurrent first runs never race to create them."""
        with self.engine.begin() as conn:
            hold_schema_lock(conn)
            tables.create_all(conn)

    def now_sql(self) -> sa.ColumnElement[str]:
        """The database clock as an ISO-8601 UTC string expression (one clock for every worker)."""
        if self.dialect == "sqlite":
            return sa.func.strftime("%Y-%m-%dT%H:%M:%fZ", "now")
        return sa.func.to_char(sa.func.timezone("UTC", sa.func.clock_timestamp()), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')

    @contextmanager
    def locked(self, model: str) -> Iterator[Connection]:
        """A transaction holding the lock for ``model``'s aliases; rows appended in it commit together."""
        with self._file_lock(model), self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(model)})
            yield conn

    @contextmanager
    def mutex(self, model: str) -> Iterator[None]:
        """The lock for ``model``'s aliases across several transactions; write rows with :meth:`commit`."""
        if self.dialect != "postgresql":
            with self._file_lock(model):
                yield
            return
        with self.engine.connect() as conn:  # a session lock: released by unlock, or when the process dies
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": lock_key(model)})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(model)})
                conn.commit()

    @contextmanager
    def _file_lock(self, model: str) -> Iterator[None]:
        """SQLite: a per-model lock file beside the database; the OS drops it when the process dies."""
        database = self.engine.url.database
        if self.dialect == "postgresql" or not database or database == ":memory:":
            yield
            return
        folder = Path(database).with_name(Path(database).name + ".locks")
        folder.mkdir(exist_ok=True)
        with open(folder / f"{lock_key(model)}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def commit(self, **row: Any) -> None:
        """Append one row in its own transaction, for a caller already holding :meth:`mutex`."""
        with self.engine.begin() as conn:
            self.append(conn, **row)

    def append(
        self,
        conn: Connection,
        *,
        actor: str,
        action: Action,
        model: str,
        alias: str,
        from_version: str | None,
        to_version: str | None,
        outcome: Outcome,
        reason: str = "",
        decision_run_id: str | None = None,
        detail: str = "",
    ) -> None:
        conn.execute(
            moves.insert().values(
                ts=self.now_sql(),
                actor=actor,
                action=action,
                model=model,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                reason=reason,
                decision_run_id=decision_run_id,
                outcome=outcome,
                detail=detail,
            )
        )

    def record(self, **row: Any) -> None:
        """Append one row in a transaction of its own (an attempt that moved nothing)."""
        with self.locked(row["model"]) as conn:
            self.append(conn, **row)

    def history(self, model: str, *, settled_pending: bool = False, conn: Connection | None = None) -> list[Move]:
        """Every row for ``model`` in order; a ``pending`` row whose outcome came later only with
        ``settled_pending`` (one move, one row), while a pending row nobody settled always shows.
        ``conn``: read inside a transaction that holds :meth:`locked` (a second connection would wait)."""
        query = sa.select(moves).where(moves.c.model == model).order_by(moves.c.id)
        if conn is not None:
            found = [Move(**dict(r)) for r in conn.execute(query).mappings()]
        else:
            with self.engine.connect() as own:
                found = [Move(**dict(r)) for r in own.execute(query).mappings()]
        if settled_pending:
            return found
        open_ids = {m.id for m in interrupted(found)}
        return [m for m in found if m.outcome != "pending" or m.id in open_ids]

    def alias_at(self, model: str, at: dt.datetime, alias: str = "production") -> Move | None:
        """The last successful move of ``alias`` at or before ``at``: what it pointed to then."""
        stamp = format_ts(at)
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(moves)
                    .where(
                        moves.c.model == model,
                        moves.c.alias == alias,
                        moves.c.outcome == "success",
                        moves.c.ts <= stamp,
                    )
                    .order_by(moves.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return Move(**dict(row)) if row else None

    def now(self, conn: Connection) -> dt.datetime:
        return parse_iso(conn.execute(sa.select(self.now_sql())).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()


def rollback_target(history: list[Move]) -> str | None:
    """Where a rollback from today's production goes: the latest version production held before,
    skipping every version that was rolled back from since it last reached production. So a second
    rollback goes further back, never forward to what the first one pulled. None: nowhere to go.

    Only successful production moves count; repairs put production back where these rows already
    say it is, so they add no step."""
    path = [m for m in history if m.alias == "production" and m.outcome == "success" and m.action != "repair"]
    pulled: set[str] = set()
    for move in path:
        if move.action == "rollback" and move.from_version is not None:
            pulled.add(move.from_version)
        pulled.discard(move.to_version or "")  # reached production again on purpose: trusted again
    if not path:
        return None
    current = path[-1].to_version
    return next((m.to_version for m in reversed(path[:-1]) if m.to_version not in pulled | {current}), None)


def recorded_position(history: list[Move], alias: str) -> str | None:
    """Where the ledger says ``alias`` points after these moves. ``previous`` has no rows of its
    own (repairs put it back where this says): it is always where a rollback would go."""
    if alias == "previous":
        return rollback_target(history)
    position = None
    for move in history:
        if move.outcome == "success" and move.alias == alias:
            position = move.to_version
    return position


def as_settled(history: list[Move], move: Move) -> list[Move]:
    """``history`` with ``move`` recorded as a success at its end: what a move in progress will leave."""
    return [*history, replace(move, outcome="success")]
