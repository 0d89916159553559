"""`embedops doctor`: find what killed jobs and out-of-band edits leave behind, and repair what is safe.

- runs left RUNNING by a killed job (older than a threshold): marked FAILED with --fix;
- an alias (production, previous, candidate) on a version whose files are missing or corrupt:
  reported (the fix is a person's rollback or promotion, not a guess);
- production or candidate pointing somewhere the ledger never recorded (moved outside embedops,
  or a crash between the alias write and its ledger row): with --fix the alias goes back to the
  ledger's last successful move, if that version's files check out, and the repair is a ledger row.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from evaluation.errors import EmbedopsError
from registry import store
from registry.ledger import Ledger
from registry.store import CANDIDATE, PREVIOUS, PRODUCTION


@dataclass
class Finding:
    kind: str  # stale_run | unusable_alias_target | alias_disagrees_with_ledger
    subject: str
    detail: str
    fixable: bool
    fixed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stale_runs(client: Any, older_than_hours: float) -> list[Finding]:
    cutoff_ms = (time.time() - older_than_hours * 3600) * 1000
    experiments = [e.experiment_id for e in client.search_experiments()]
    findings = []
    for run in client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=5000):
        if run.info.start_time and run.info.start_time < cutoff_ms:
            hours = (time.time() * 1000 - run.info.start_time) / 3_600_000
            findings.append(Finding("stale_run", run.info.run_id,
                                    f"RUNNING for {hours:.1f} h (experiment {run.info.experiment_id}): its job died",
                                    fixable=True))
    return findings


def alias_findings(ledger: Ledger, name: str) -> list[Finding]:
    findings = []
    for alias in (PRODUCTION, PREVIOUS, CANDIDATE):
        version = store.alias_version(name, alias)
        if version is None:
            continue
        try:
            store.check_version_files(store.get_version(name, version))
        except EmbedopsError as exc:
            findings.append(Finding("unusable_alias_target", f"{name}@{alias}",
                                    f"points to v{version}, which cannot be served: {exc}; roll back or promote",
                                    fixable=False))
    moves = ledger.history(name)
    for alias in (PRODUCTION, CANDIDATE):
        audited = next((m.to_version for m in reversed(moves) if m.alias == alias and m.outcome == "success"), None)
        actual = store.alias_version(name, alias)
        if actual != audited:
            findings.append(Finding(
                "alias_disagrees_with_ledger", f"{name}@{alias}",
                f"the registry says v{actual}, the ledger's last move says "
                f"{'v' + audited if audited else 'never set'}", fixable=audited is not None))
    return findings


def repair_alias(ledger: Ledger, finding: Finding, actor: str) -> None:
    """Point the alias back at the ledger's version, under the ledger's lock, with a row saying so."""
    name, alias = finding.subject.split("@")
    import sqlalchemy as sa

    from registry.ledger import moves

    with ledger.locked(name) as conn:  # read on the locked connection: a second one would wait for it
        audited = conn.execute(
            sa.select(moves.c.to_version).where(moves.c.model == name, moves.c.alias == alias,
                                                moves.c.outcome == "success").order_by(moves.c.id.desc()).limit(1)
        ).scalar_one()
        actual = store.alias_version(name, alias)
        store.check_version_files(store.get_version(name, audited))
        store.set_alias(name, alias, audited)
        ledger.append(conn, actor=actor, action="repair", model=name, alias=alias, from_version=actual,
                      to_version=audited, outcome="success", reason="embedops doctor --fix",
                      detail=f"the registry said v{actual}, which the ledger never recorded")


def examine(ledger: Ledger, *, models: list[str] | None, stale_hours: float, fix: bool, actor: str) -> dict[str, Any]:
    client = store.client()
    names = models or sorted(m.name for m in client.search_registered_models(max_results=1000))
    findings = stale_runs(client, stale_hours)
    for name in names:
        findings += alias_findings(ledger, name)
    if fix:
        for finding in findings:
            if not finding.fixable:
                continue
            if finding.kind == "stale_run":
                client.set_tag(finding.subject, "embedops.doctor", finding.detail)
                client.set_terminated(finding.subject, "FAILED")
            else:
                repair_alias(ledger, finding, actor)
            finding.fixed = True
    remaining = [f for f in findings if not f.fixed]
    return {"models": names, "findings": [f.to_dict() for f in findings], "clean": not remaining,
            "fixed": sum(f.fixed for f in findings), "remaining": len(remaining)}
