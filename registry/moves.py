"""Compare-and-set alias moves, each with its ledger row, under the ledger's lock.

MLflow's alias write is last-writer-wins; here a move of ``production`` happens only if it still
points where the mover last saw it (the version the gate ran against), checked and done while the
ledger's lock is held, then read back. ``previous`` follows: it is always where a rollback would go
(``registry.ledger.rollback_target``), never a version a rollback pulled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from embedops.core.errors import EmbedopsError
from registry import store
from registry.ledger import Action, Ledger, Move, as_settled, rollback_target
from registry.store import CANDIDATE, PREVIOUS, PRODUCTION, RegistryError


class ConcurrentMoveError(RegistryError):
    """Production changed between the gate (or the caller's read) and the move."""


class NotAuthorizedError(RegistryError):
    """The actor may not move this alias."""


@dataclass(frozen=True)
class MoveResult:
    model: str
    from_version: str | None
    to_version: str
    previous: str | None


# MLflow grants per registered model, not per alias: these are the grants that can set any alias.
UPDATE_GRANTS = ("EDIT", "MANAGE")


def authorize(
    actor: str,
    release_managers: list[str],
    alias: str = PRODUCTION,
    *,
    mlflow_grant: str | None = None,
    model: str = "",
) -> None:
    """May ``actor`` move ``alias``? Both must agree: MLflow's grant on the model, where the tracking
    server authenticates (None otherwise), and the release-manager list (empty: anyone; the
    single-user default). A grant is checked first, so embedops never allows what MLflow refuses."""
    if mlflow_grant is not None and mlflow_grant not in UPDATE_GRANTS:
        raise NotAuthorizedError(
            f"MLflow grants '{actor}' {mlflow_grant} on registered model '{model}': moving "
            f"{alias} needs EDIT or MANAGE, which an MLflow admin grants "
            "(docs/deploy.md, authenticated promotion)"
        )
    if alias == PRODUCTION and release_managers and actor not in release_managers:
        raise NotAuthorizedError(
            f"'{actor}' may not move {PRODUCTION}: release managers are "
            f"{', '.join(release_managers)} (automation may only set the candidate alias)"
        )


def move_production(
    ledger: Ledger,
    *,
    name: str,
    to_version: str,
    expected: str | None,
    actor: str,
    action: Action,
    reason: str,
    decision_run_id: str | None = None,
    detail: str = "",
) -> MoveResult:
    """Point ``production`` at ``to_version`` only if it still points at ``expected``; ``detail`` goes on
    the ledger row (the index ids that move with the version)."""
    conflict: str | None = None
    failure: Exception | None = None
    with ledger.mutex(name):
        current = store.alias_version(name, PRODUCTION)
        old_previous = store.alias_version(name, PREVIOUS)
        row = dict(
            actor=actor,
            action=action,
            model=name,
            alias=PRODUCTION,
            from_version=current,
            to_version=to_version,
            reason=reason,
            decision_run_id=decision_run_id,
            detail=detail,
        )
        if current != expected:
            conflict = (
                f"production moved from v{expected} to v{current} since the gate ran; "
                f"re-run the promotion against v{current}"
                if expected
                else f"production is already v{current}; promote against it instead of --initial"
            )
            ledger.commit(outcome="conflict", **(row | {"detail": conflict}))
        else:
            try:
                next_previous = rollback_target(as_settled(ledger.history(name), pending_move(row)))
                with recorded(ledger, row):
                    try:
                        # production first: a job killed before `previous` follows leaves a move
                        # that doctor can finish (it knows both ends from the pending row).
                        store.set_alias(name, PRODUCTION, to_version)
                        set_or_clear(name, PREVIOUS, next_previous)
                        seen = store.alias_version(name, PRODUCTION)
                        if seen != to_version:
                            raise RegistryError(f"read back production = v{seen} after setting v{to_version}")
                    except Exception:
                        restore(name, current, old_previous)
                        raise
            except Exception as exc:
                failure = exc
    if conflict:
        raise ConcurrentMoveError(conflict)
    if failure:
        if isinstance(failure, EmbedopsError):
            raise failure
        raise RegistryError(f"moving production failed and was undone: {failure}") from failure
    return MoveResult(name, expected, to_version, expected)


def set_candidate(
    ledger: Ledger,
    *,
    name: str,
    version: str,
    actor: str,
    reason: str,
    decision_run_id: str | None = None,
    action: Literal["candidate", "gate"] = "candidate",
) -> None:
    """Point ``candidate`` at ``version``, on record (an ``action`` row, pending first; ``gate`` when a
    passed ``promote --gate-only`` put it there).
    For a caller holding ``ledger.mutex(name)``: the alias read for ``from_version`` and the move are one step."""
    row = dict(
        actor=actor,
        action=action,
        model=name,
        alias=CANDIDATE,
        from_version=store.alias_version(name, CANDIDATE),
        to_version=version,
        reason=reason,
        decision_run_id=decision_run_id,
    )
    with recorded(ledger, row):
        store.set_alias(name, CANDIDATE, version)


@contextmanager
def recorded(ledger: Ledger, row: dict[str, Any]) -> Iterator[None]:
    """For a caller holding ``ledger.mutex``: the move is on record (``pending``) before the block
    changes MLflow's aliases, and its outcome after. A job killed in between never leaves an alias
    move without its row; `embedops doctor --fix` finishes the record from what the registry says."""
    ledger.commit(outcome="pending", **row)
    try:
        yield
    except Exception as exc:
        ledger.commit(outcome="failed", **(row | {"detail": str(exc)}))
        raise
    ledger.commit(outcome="success", **row)


def restore(name: str, production: str | None, previous: str | None) -> None:
    for alias, version in ((PRODUCTION, production), (PREVIOUS, previous)):
        set_or_clear(name, alias, version)


def set_or_clear(name: str, alias: str, version: str | None) -> None:
    if version is None:
        store.delete_alias(name, alias)
    else:
        store.set_alias(name, alias, version)


def pending_move(row: dict[str, Any]) -> Move:
    """The ledger row a move is about to write, as the Move it will read back as."""
    return Move(id=0, ts="", outcome="pending", **({"detail": ""} | row))
