"""Retention: traffic data embedops stored is purged once it is older than the limit, and each purge is on record.

What counts as stored traffic data (its age is that of the oldest query it may hold, else when it was written):

- cached vectors of traffic windows (``cache/embeddings/*.npy`` whose sidecar says ``traffic``);
- drift runs' pages (``drift/``: the redacted example texts, Evidently's plot of the vectors);
- shadow runs' per-query table, summary and report, and the report's local copy.

Runs themselves stay (their scores, parameters and the ledger's chain are not personal data); their
traffic artifacts go and the run is tagged ``embedops.purged``. Golden-set vectors are not traffic and stay.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from embedops.core.names import PURGED_TAG, REPORT_FILE_TAG, TRAFFIC_OLDEST_TAG
from embedops.core.times import parse_iso
from registry.ledger import Ledger

if TYPE_CHECKING:
    from registry.doctor import Finding

# The artifacts of each experiment's runs that hold traffic (texts, or a picture of its vectors).
TRAFFIC_ARTIFACTS: dict[str, tuple[str, ...]] = {
    "monitoring": ("drift",),
    "shadow": ("shadow_queries.parquet", "shadow_report.html", "shadow_summary.json"),
}
Kind = Literal["cache_entry", "run_artifacts", "report_file"]
KIND_LABELS: dict[str, str] = {
    "cache_entry": "cached traffic vectors",
    "run_artifacts": "run artifacts",
    "report_file": "report files",
}

metadata = sa.MetaData()
purges = sa.Table(
    "traffic_purges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.String(32), nullable=False),  # the database clock, as for alias moves
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),  # "command" (traffic purge) or "drift job"
    sa.Column("older_than_days", sa.Float, nullable=False),
    sa.Column("cutoff", sa.String(32), nullable=False),
    sa.Column("cache_entries", sa.Integer, nullable=False),
    sa.Column("run_artifacts", sa.Integer, nullable=False),
    sa.Column("report_files", sa.Integer, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON: what went, one line each
)


@dataclass(frozen=True)
class Expired:
    """One stored thing past retention."""

    kind: Kind
    ref: str  # a file path, or "<run id>:<artifact>"
    oldest: str  # ISO time its age is counted from
    bytes: int = 0


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed (or, dry, would remove); ``to_dict`` is ``traffic purge --json``."""

    older_than_days: float
    cutoff: str
    dry_run: bool
    removed: dict[str, int]  # per kind
    bytes: int
    items: list[Expired] = field(default_factory=list)
    recorded: bool = False  # a ledger row was written

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cutoff_of(now: dt.datetime, days: float) -> dt.datetime:
    return now - dt.timedelta(days=days)


def past_retention(oldest: dt.datetime, cutoff: dt.datetime) -> bool:
    """Data as old as ``oldest`` is past retention at ``cutoff`` (a limit of 30 days keeps exactly 30 days)."""
    return oldest < cutoff


def parse_age(text: str) -> float:
    """'30d', '12h', '2w' or a bare number of days, as days."""
    units = {"d": 1.0, "h": 1 / 24, "w": 7.0}
    value = text.strip().lower()
    unit = value[-1] if value and value[-1] in units else "d"
    number = value[:-1] if value and value[-1] in units else value
    try:
        days = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"'{text}' is not an age: write 30d, 12h or 2w") from None
    if days <= 0:
        raise ValueError(f"'{text}': the age must be more than zero")
    return days


def _stamp(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


def expired_cache_entries(folder: Path | None, cutoff: dt.datetime) -> Iterator[Expired]:
    """Cached traffic vectors older than ``cutoff``; golden-set and corpus entries are not traffic."""
    if folder is None or not folder.is_dir():
        return
    for meta_path in sorted(folder.glob("*.json")):
        try:
            traffic = json.loads(meta_path.read_text()).get("traffic")
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(traffic, dict):
            continue
        oldest = parse_iso(traffic["oldest"]) if traffic.get("oldest") else _stamp(meta_path)
        if past_retention(oldest, cutoff):
            data = meta_path.with_suffix(".npy")
            size = data.stat().st_size if data.exists() else 0
            yield Expired("cache_entry", str(data), oldest.isoformat(), size)


def expired_report_files(folder: Path | None, cutoff: dt.datetime) -> Iterator[Expired]:
    """Local shadow report copies written before ``cutoff`` (their runs name theirs; these are the rest)."""
    if folder is None or not folder.is_dir():
        return
    for path in sorted(folder.glob("*.html")):
        written = _stamp(path)
        if past_retention(written, cutoff):
            yield Expired("report_file", str(path), written.isoformat(), path.stat().st_size)


def _runs(client: Any, experiment_ids: list[str]) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_runs(experiment_ids, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def expired_runs(client: Any, cutoff: dt.datetime) -> Iterator[tuple[Any, list[Expired]]]:
    """Drift and shadow runs whose traffic artifacts are past retention, with what of them is there."""
    experiments = {e.name: e.experiment_id for e in client.search_experiments() if e.name in TRAFFIC_ARTIFACTS}
    by_id = {v: k for k, v in experiments.items()}
    if not experiments:
        return
    for run in _runs(client, list(experiments.values())):
        tags = run.data.tags
        if PURGED_TAG in tags:
            continue
        recorded = tags.get(TRAFFIC_OLDEST_TAG)
        oldest = parse_iso(recorded) if recorded else dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.UTC)
        if not past_retention(oldest, cutoff):
            continue
        present = {a.path: a for a in client.list_artifacts(run.info.run_id)}
        items = [
            Expired("run_artifacts", f"{run.info.run_id}:{name}", oldest.isoformat(), present[name].file_size or 0)
            for name in TRAFFIC_ARTIFACTS[by_id[run.info.experiment_id]]
            if name in present
        ]
        report = tags.get(REPORT_FILE_TAG)
        if report and Path(report).is_file():
            items.append(Expired("report_file", report, oldest.isoformat(), Path(report).stat().st_size))
        yield run, items


class PurgeLog:
    """The purge records, in the ledger's database."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        ledger.create_tables(metadata)

    def record(self, *, actor: str, trigger: str, result: PurgeResult) -> None:
        with self.ledger.engine.begin() as conn:
            conn.execute(
                purges.insert().values(
                    ts=self.ledger.now_sql(),
                    actor=actor,
                    trigger=trigger,
                    older_than_days=result.older_than_days,
                    cutoff=result.cutoff,
                    cache_entries=result.removed.get("cache_entry", 0),
                    run_artifacts=result.removed.get("run_artifacts", 0),
                    report_files=result.removed.get("report_file", 0),
                    bytes=result.bytes,
                    detail=json.dumps([asdict(i) for i in result.items]),
                )
            )

    def rows(self) -> list[dict[str, Any]]:
        with self.ledger.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(purges).order_by(purges.c.id)).mappings()]


def find_expired(
    *, cache_dir: Path | None, report_dir: Path | None, client: Any, cutoff: dt.datetime
) -> tuple[list[Expired], list[Any]]:
    """Everything past retention, and the runs it belongs to (to be tagged once their artifacts are gone)."""
    items = list(expired_cache_entries(cache_dir, cutoff))
    runs = []
    named: set[str] = set()
    for run, run_items in expired_runs(client, cutoff):
        runs.append(run)
        items += run_items
        named |= {i.ref for i in run_items if i.kind == "report_file"}
    items += [i for i in expired_report_files(report_dir, cutoff) if i.ref not in named]
    return items, runs


def purge_traffic(
    *,
    days: float,
    cache_dir: Path | None,
    report_dir: Path | None,
    ledger: Ledger,
    actor: str,
    trigger: str = "command",
    dry_run: bool = False,
    now: dt.datetime | None = None,
    record_empty: bool = True,
) -> PurgeResult:
    """Remove stored traffic data older than ``days`` and record the purge in the ledger."""
    from mlflow import MlflowClient
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = MlflowClient()
    cutoff = cutoff_of(now or dt.datetime.now(dt.UTC), days)
    items, runs = find_expired(cache_dir=cache_dir, report_dir=report_dir, client=client, cutoff=cutoff)
    result = PurgeResult(
        older_than_days=days,
        cutoff=cutoff.isoformat(timespec="seconds"),
        dry_run=dry_run,
        removed=dict(Counter(i.kind for i in items)),
        bytes=sum(i.bytes for i in items),
        items=items,
    )
    if dry_run:
        return result
    repos = {run.info.run_id: get_artifact_repository(run.info.artifact_uri) for run in runs}
    for item in items:
        if item.kind == "cache_entry":
            # the sidecar goes first: without it the vectors are never read again, even if a crash leaves them
            Path(item.ref).with_suffix(".json").unlink(missing_ok=True)
            Path(item.ref).unlink(missing_ok=True)
        elif item.kind == "report_file":
            Path(item.ref).unlink(missing_ok=True)
        else:
            run_id, artifact = item.ref.split(":", 1)
            repos[run_id].delete_artifacts(artifact)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for run in runs:
        client.set_tag(run.info.run_id, PURGED_TAG, f"{stamp} (older than {days:g} days)")
    if items or record_empty:
        PurgeLog(ledger).record(actor=actor, trigger=trigger, result=result)
        return replace(result, recorded=True)
    return result


def retention_findings(cache_dir: Path | None, report_dir: Path | None, days: float) -> list[Finding]:
    """``embedops doctor``'s view: stored traffic data past ``days``, one finding per kind."""
    from mlflow import MlflowClient

    from registry.doctor import Finding

    cutoff = cutoff_of(dt.datetime.now(dt.UTC), days)
    items, _ = find_expired(cache_dir=cache_dir, report_dir=report_dir, client=MlflowClient(), cutoff=cutoff)
    findings = []
    for kind, label in KIND_LABELS.items():
        mine = [i for i in items if i.kind == kind]
        if mine:
            oldest = min(i.oldest for i in mine)
            findings.append(
                Finding(
                    "traffic_past_retention",
                    label,
                    f"{len(mine)} past {days:g} days (oldest {oldest[:10]}): "
                    f"embedops traffic purge --older-than {days:g}d",
                    fixable=False,
                )
            )
    return findings
