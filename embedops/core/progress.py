"""Phase lines: what a long job is doing, said on stderr as it starts each phase and when it ends.

Jobs wrap their slow steps in :func:`phase`; nothing is printed until an entry point installs a
sink (the CLI installs stderr), so library callers and tests stay quiet unless they ask. Third-party
progress bars are a separate switch, :func:`bars`: a person at a terminal or ``--debug`` gets them,
a log file does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_sink: Callable[[str], None] | None = None
_bars = True
_started = time.perf_counter()


def install(sink: Callable[[str], None] | None, *, bars: bool) -> None:
    """Send phase lines to ``sink`` (None: nowhere) and switch library progress bars on or off."""
    global _sink, _bars, _started
    _sink, _bars, _started = sink, bars, time.perf_counter()


def bars() -> bool:
    """Whether library progress bars (sentence-transformers, the trainer, MLflow downloads) may draw."""
    return _bars


def say(line: str) -> None:
    """One line to the installed sink, stamped with the seconds since the job started."""
    if _sink is not None:
        _sink(f"[{time.perf_counter() - _started:6.1f}s] {line}")


@contextmanager
def phase(what: str, *, count: int | None = None, unit: str = "texts") -> Iterator[None]:
    """Announce ``what`` now, and when it ends how long it took (with ``count``: how many per second)."""
    say(f"{what} ...")
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    rate = f", {count / seconds:,.0f} {unit}/s" if count and seconds > 0 else ""
    say(f"  done in {seconds:.1f} s{rate}")
