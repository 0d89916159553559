"""`embedops doctor`: find what killed jobs and out-of-band edits leave behind, and repair what is safe.

- runs left RUNNING by a killed job (older than a threshold): marked FAILED with --fix;
- an alias (production, previous, candidate) on a version whose files are missing or corrupt:
  reported (the fix is a person's rollback or promotion, not a guess);
- a move whose job died between its ``pending`` ledger row and its outcome: with --fix the
  outcome is recorded from what the registry says (the alias reached the new version: success,
  and ``previous`` follows; it did not: failed);
- a version without a sha256 manifest (registered outside embedops, or before manifests): its
  files cannot be verified; reported, and re-registering it (`embedops register models:/NAME/V`)
  gives it one;
- production, previous or candidate pointing somewhere the ledger never recorded (moved outside
  embedops; ``previous`` must be where a rollback would go): with --fix the alias
  goes back to where the ledger says, if that version's files check out, and the repair is a ledger row;
- indexes: unfinished builds, tampered files, a fingerprint that is not the version's, production
  without an index other versions have (``index_doctor``): --fix resumes or rebuilds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from embedops.core.errors import EmbedopsError
from registry import store
from registry.ledger import Ledger, Move, as_settled, interrupted, recorded_position, rollback_target
from registry.moves import set_or_clear
from registry.store import CANDIDATE, PREVIOUS, PRODUCTION
from registry.verified import alias_file_problems, check_version_files

if TYPE_CHECKING:
    from registry.index_moves import IndexRoots


@dataclass
class Finding:
    # stale_run | interrupted_move | unverified_version | unusable_alias_target | alias_disagrees_with_ledger
    # | traffic_past_retention | ...
    kind: str
    subject: str
    detail: str
    fixable: bool
    fixed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DoctorReport:
    """What ``doctor`` found (and fixed); ``to_dict`` is ``doctor --json``."""

    models: list[str]
    findings: list[Finding]
    clean: bool  # nothing remains to fix
    fixed: int
    remaining: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_findings(self, more: list[Finding]) -> DoctorReport:
        """The report with checks from the layers above (retention lives in monitoring/)."""
        findings = [*self.findings, *more]
        remaining = [f for f in findings if not f.fixed]
        return DoctorReport(self.models, findings, not remaining, sum(f.fixed for f in findings), len(remaining))


def stale_runs(client: Any, older_than_hours: float) -> list[Finding]:
    cutoff_ms = (time.time() - older_than_hours * 3600) * 1000
    experiments = [e.experiment_id for e in client.search_experiments()]
    findings = []
    for run in client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=5000):
        if run.info.start_time and run.info.start_time < cutoff_ms:
            hours = (time.time() * 1000 - run.info.start_time) / 3_600_000
            findings.append(
                Finding(
                    "stale_run",
                    run.info.run_id,
                    f"RUNNING for {hours:.1f} h (experiment {run.info.experiment_id}): its job died",
                    fixable=True,
                )
            )
    return findings


def alias_findings(ledger: Ledger, name: str) -> list[Finding]:
    findings = [
        Finding(
            "unusable_alias_target",
            f"{name}@{alias}",
            f"points to v{version}, which cannot be served: {problem}; roll back or promote",
            fixable=False,
        )
        for alias, version, problem in alias_file_problems(name)
        if problem
    ]
    moves = ledger.history(name)
    for alias in (PRODUCTION, PREVIOUS, CANDIDATE):
        audited = recorded_position(moves, alias)
        actual = store.alias_version(name, alias)
        if actual != audited:
            said = f"v{audited}" if audited else "unset"
            findings.append(
                Finding(
                    "alias_disagrees_with_ledger",
                    f"{name}@{alias}",
                    f"the registry says v{actual}, the ledger says {said}"
                    + (" (where a rollback would go)" if alias == PREVIOUS else ""),
                    fixable=audited is not None or alias == PREVIOUS,
                )
            )
    return findings


def unverified_versions(name: str) -> list[Finding]:
    from registry.contract import MANIFEST_TAG

    return [
        Finding(
            "unverified_version",
            f"{name}/v{v.version}",
            f"has no sha256 manifest (tag {MANIFEST_TAG}), so nothing can tell if its files changed; "
            f"re-register it: embedops register models:/{name}/{v.version} --name {name}",
            fixable=False,
        )
        for v in store.list_versions(name)
        if not v.tags.get(MANIFEST_TAG)
    ]


def interrupted_moves(ledger: Ledger, name: str) -> list[tuple[Finding, Move]]:
    found = []
    for move in interrupted(ledger.history(name, settled_pending=True)):
        actual = store.alias_version(name, move.alias)
        found.append(
            (
                Finding(
                    "interrupted_move",
                    f"{name}@{move.alias}",
                    f"{move.action} v{move.from_version} -> v{move.to_version} by {move.actor} at {move.ts} "
                    f"has no outcome (its job died); the registry says v{actual}",
                    fixable=True,
                ),
                move,
            )
        )
    return found


def settle_move(ledger: Ledger, move: Move, actor: str) -> None:
    """Record the outcome of a move whose job died, from where the alias is now."""
    with ledger.mutex(move.model):
        if move.id not in {m.id for m in interrupted(ledger.history(move.model, settled_pending=True))}:
            return  # a live job held the lock and has just recorded its own outcome
        actual = store.alias_version(move.model, move.alias)
        row = {
            k: getattr(move, k)
            for k in ("actor", "action", "model", "alias", "from_version", "to_version", "reason", "decision_run_id")
        }
        if actual == move.to_version:
            if move.alias == PRODUCTION:
                set_or_clear(move.model, PREVIOUS, rollback_target(as_settled(ledger.history(move.model), move)))
            ledger.commit(
                outcome="success",
                **(
                    row
                    | {"detail": f"recorded by embedops doctor --fix ({actor}): the job died after moving the alias"}
                ),
            )
        else:
            ledger.commit(
                outcome="failed",
                **(
                    row
                    | {
                        "detail": f"recorded by embedops doctor --fix ({actor}): the "
                        f"job died before moving the alias (v{actual})"
                    }
                ),
            )


def repair_alias(ledger: Ledger, finding: Finding, actor: str) -> None:
    """Point the alias back at the ledger's version, under the ledger's lock, with a row saying so."""
    name, alias = finding.subject.split("@")
    with ledger.locked(name) as conn:
        audited = recorded_position(ledger.history(name, conn=conn), alias)
        if audited is None and alias != PREVIOUS:
            return
        actual = store.alias_version(name, alias)
        if audited is not None:
            check_version_files(store.get_version(name, audited))
        set_or_clear(name, alias, audited)
        ledger.append(
            conn,
            actor=actor,
            action="repair",
            model=name,
            alias=alias,
            from_version=actual,
            to_version=audited,
            outcome="success",
            reason="embedops doctor --fix",
            detail=f"the registry said v{actual}, which the ledger never recorded",
        )


def examine(
    ledger: Ledger,
    *,
    models: list[str] | None,
    stale_hours: float,
    fix: bool,
    actor: str,
    index_roots: IndexRoots | None = None,
) -> DoctorReport:
    """Every finding (and with ``fix``, its repair); ``index_roots``: check the models' indexes too."""
    from registry.index_doctor import index_findings

    client = store.client()
    index_fixes: dict[int, Callable[[], None]] = {}
    names = models or sorted(m.name for m in client.search_registered_models(max_results=1000))
    findings = stale_runs(client, stale_hours)
    for name in names:
        unsettled = interrupted_moves(ledger, name)
        findings += [finding for finding, _ in unsettled]
        if fix:  # settled first, so the alias check below compares against complete records
            for finding, move in unsettled:
                settle_move(ledger, move, actor)
                finding.fixed = True
        halfway = set() if fix else {finding.subject for finding, _ in unsettled}
        findings += [f for f in alias_findings(ledger, name) if f.subject not in halfway]
        findings += unverified_versions(name)
        if index_roots is not None:
            for finding, repair in index_findings(index_roots, name):
                findings.append(finding)
                index_fixes[id(finding)] = repair
    if fix:
        for finding in findings:
            if finding.fixed:
                continue
            if not finding.fixable:
                continue
            if finding.kind == "stale_run":
                client.set_tag(finding.subject, "embedops.doctor", finding.detail)
                client.set_terminated(finding.subject, "FAILED")
            elif id(finding) in index_fixes:
                try:
                    index_fixes[id(finding)]()
                except EmbedopsError as exc:
                    finding.detail += f" (--fix failed: {exc})"
                    continue
            else:
                repair_alias(ledger, finding, actor)
            finding.fixed = True
    remaining = [f for f in findings if not f.fixed]
    return DoctorReport(
        models=names,
        findings=findings,
        clean=not remaining,
        fixed=sum(f.fixed for f in findings),
        remaining=len(remaining),
    )
