"""ISO-8601 times, one spelling: what flags, traffic lines and the ledger all parse."""

from __future__ import annotations

import datetime as dt


def parse_iso(value: str) -> dt.datetime:
    """``value`` as an aware datetime: a trailing ``Z`` is UTC and a time without a zone is taken as UTC
    (so it compares with every other). Raises ValueError for anything else; callers say whose input it was."""
    stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
