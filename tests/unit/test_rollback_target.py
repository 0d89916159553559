"""Where a rollback goes, from the ledger alone: hand-written histories, hand-computed targets."""

from __future__ import annotations

import pytest

from registry.ledger import Move, recorded_position, rollback_target


def moves(*steps: str) -> list[Move]:
    """``"promote 1>2"``, ``"rollback 3>2 failed"``, ``"repair 5>2"``, ``"candidate >4"``: one row each."""
    rows = []
    for n, step in enumerate(steps):
        action, ends, *outcome = step.split()
        before, after = ends.split(">")
        alias = "candidate" if action == "candidate" else "production"
        rows.append(
            Move(
                id=n,
                ts="",
                actor="a",
                action=action,
                model="m",
                alias=alias,
                from_version=before or None,
                to_version=after or None,
                reason="",
                decision_run_id=None,
                outcome=outcome[0] if outcome else "success",
                detail="",
            )
        )
    return rows


@pytest.mark.parametrize(
    ("history", "target"),
    [
        ([], None),
        (["promote >1"], None),
        (["promote >1", "promote 1>2"], "1"),
        (["promote >1", "promote 1>2", "promote 2>3"], "2"),
        # the first rollback pulls 3; the second goes on to 1, never forward to 3
        (["promote >1", "promote 1>2", "promote 2>3", "rollback 3>2"], "1"),
        (["promote >1", "promote 1>2", "promote 2>3", "rollback 3>2", "rollback 2>1"], None),
        # 3 went back to production through a promotion (a gate): trusted again, so a rollback from 4 may reach it
        (["promote >1", "promote 1>2", "promote 2>3", "rollback 3>2", "promote 2>3", "promote 3>4"], "3"),
        # an explicit forward rollback (--to-version 3) pulls 2 and trusts 3
        (["promote >1", "promote 1>2", "promote 2>3", "rollback 3>2", "rollback 2>3"], "1"),
        # failed, rejected and pending moves, candidate moves and repairs are no steps of production
        (
            ["promote >1", "promote 1>2", "promote 2>3 rejected", "promote 2>4 pending", "candidate >5", "repair 6>2"],
            "1",
        ),
    ],
)
def test_rollback_goes_to_the_latest_earlier_version_not_rolled_back_from(
    history: list[str], target: str | None
) -> None:
    rows = moves(*history)
    assert rollback_target(rows) == target
    assert recorded_position(rows, "previous") == target  # previous always shows where a rollback goes


def test_recorded_positions_of_production_and_candidate() -> None:
    rows = moves("promote >1", "promote 1>2", "candidate >3", "promote 2>3", "candidate 3>", "rollback 3>2")
    assert (recorded_position(rows, "production"), recorded_position(rows, "candidate")) == ("2", None)
    assert recorded_position(rows, "previous") == "1"
