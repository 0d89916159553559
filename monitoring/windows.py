"""Traffic windows: JSONL lines ``{"text": ..., "ts": ISO-8601}`` from a file or a folder of files.

Every window leaves here redacted (``monitoring.redaction``): nothing downstream sees what users typed
as they typed it, and a window's digest, cache entry, examples and reports are of the redacted texts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from embedops.core.errors import DataError
from embedops.core.files import read_jsonl
from embedops.core.text import check_text
from embedops.core.times import parse_iso
from monitoring.redaction import Redactor

if TYPE_CHECKING:
    from registry.shadow import Traffic

# The fewest texts a window may hold for a drift score to mean anything: the domain classifier is
# scored on a random half of the pooled texts, and with a one-text window that half lacked it in every
# trial here, so the AUC was NaN, which once read as "no drift". The trigger's `min_window` (1000 by default)
# is a separate, higher bar: a measured window below it is reported but never starts a retrain.
MIN_WINDOW_TEXTS = 10


@dataclass(frozen=True)
class Window:
    texts: list[str]
    source: str
    digest: str  # sha256 over the sampled texts, in order: the window's identity
    total: int  # lines in the time range before sampling
    dropped_empty: int
    # The time the window covers: the --start/--end range, else its first and last ``ts`` (None without any).
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    # personal data found per type in the sampled texts ("texts": how many held any; "dropped": left out)
    redactions: dict[str, int] = field(default_factory=dict)
    # What users typed (False: texts of our own, such as production's training queries): retention applies.
    is_traffic: bool = True

    @property
    def oldest(self) -> str | None:
        """The oldest traffic the window may hold, as ISO text: what retention counts its age from."""
        return self.start.isoformat() if self.is_traffic and self.start else None

    @property
    def span(self) -> tuple[str | None, str | None]:
        """(start, end) as ISO text, for params, reports and --json."""
        return (self.start.isoformat() if self.start else None, self.end.isoformat() if self.end else None)

    def as_traffic(self) -> Traffic:
        """The window as the queries of a shadow comparison."""
        from registry.shadow import Traffic  # not at import: it loads the search stack (torch, LanceDB)

        return Traffic(self.texts, self.source, self.digest, self.total, *self.span, redactions=self.redactions)


def text_digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8") + b"\n")
    return h.hexdigest()


def _parse_ts(value: object, path: Path, lineno: int) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataError("expected an ISO-8601 string", path=str(path), row=lineno, field="ts")
    check_text(value, path=str(path), row=lineno, field="ts")
    try:
        return parse_iso(value)
    except ValueError:
        raise DataError(f"'{value[:40]}' is not an ISO-8601 time", path=str(path), row=lineno, field="ts") from None


def read_window(
    path: str | Path,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    size: int | None = None,
    seed: int = 0,
    min_texts: int = MIN_WINDOW_TEXTS,
    purpose: str = "a drift score",
    redactor: Redactor | None = None,
) -> Window:
    """Texts whose ``ts`` falls in [start, end) (with a range every line needs a ``ts``; without one,
    ``ts`` is optional), sampled without replacement to ``size`` with a fixed seed so a replay gives
    the same window, then redacted (every built-in detector masking, unless ``redactor`` says otherwise).
    Fewer than ``min_texts`` texts is an error: it is refused before any embedding."""
    root = Path(path)
    files = sorted(root.rglob("*.jsonl")) if root.is_dir() else [root]
    if not root.exists():
        raise DataError("traffic file or folder not found", path=str(root))
    if not files:
        raise DataError("no *.jsonl files in the traffic folder", path=str(root))
    texts: list[str] = []
    stamps: list[dt.datetime] = []
    dropped = 0
    for file in files:
        for lineno, record in read_jsonl(file):
            if "text" not in record:
                raise DataError("expected an object with a 'text' field", path=str(file), row=lineno)
            text = record["text"]
            if text is not None and not isinstance(text, str):
                raise DataError(f"expected text, got {type(text).__name__}", path=str(file), row=lineno, field="text")
            if text:
                check_text(text, path=str(file), row=lineno, field="text")
            stamp = _parse_ts(record.get("ts"), file, lineno)
            if (start or end) and stamp is None:
                # Skipping it would shrink the window silently: the line may well belong to the range.
                raise DataError(
                    "no 'ts' but a time range (--start/--end) was given: add an ISO-8601 'ts' to "
                    "every line, or choose the window by file (pass the file without --start/--end)",
                    path=str(file),
                    row=lineno,
                    field="ts",
                )
            if stamp is not None and ((start and stamp < start) or (end and stamp >= end)):
                continue
            if not text or not text.strip():
                dropped += 1
                continue
            texts.append(text.strip())
            if stamp is not None:
                stamps.append(stamp)
    total = len(texts)
    if total == 0:
        raise DataError(f"the window has no usable texts ({dropped} empty)", path=str(root))
    if size is not None and total > size:
        texts = random.Random(seed).sample(texts, size)
    # Sampled first, so the cost is per sampled text; texts a `drop` mode removes shrink the window.
    texts, found = (redactor or Redactor()).redact_all(texts)
    if len(texts) < min_texts:
        raise DataError(
            f"the window has {len(texts)} texts"
            + (f" ({found.dropped} left out for personal data)" if found.dropped else "")
            + f", fewer than the {min_texts} {purpose} needs: "
            "widen the time range or add traffic (and keep the sample size at least that)",
            path=str(root),
        )
    return Window(
        texts=texts,
        source=str(root),
        digest=text_digest(texts),
        total=total,
        dropped_empty=dropped,
        start=start or (min(stamps) if stamps else None),
        end=end or (max(stamps) if stamps else None),
        redactions=found.to_dict(),
    )
