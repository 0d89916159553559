"""`embedops compare NAME A B`: the gate's evidence for two versions, as a preview that changes nothing.

The same work as a gate (both versions verified and scored on one golden set, the paired test, the
policy's checks, the per-query table and the HTML report) with none of its effects: no ledger row,
no alias move, no version tag, no MLflow run. The report is written to a file the caller names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedops.core.progress import phase
from evaluation.golden import load_golden_set
from registry import store
from registry.gate.policy import GatePolicy
from registry.gate.report import DecisionRecord, render_html, verdict_sentence
from registry.ledger import format_ts
from registry.promotion import gate_golden_set, resolve_alias


@dataclass(frozen=True)
class Comparison:
    """``compare --json``: what the gate would say of B against A, and the queries that changed most."""

    model: str
    baseline: str  # A: the version compared against (production's role in a gate)
    version: str  # B: the version judged (the candidate's role)
    golden: str
    golden_split: str
    verdict: str  # what a gate with this policy would decide
    summary: str  # the decision in one sentence
    decision: dict[str, Any]
    changes: list[dict[str, Any]]
    report: str  # the HTML report's path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    name: str,
    baseline: str,
    version: str,
    *,
    policy: GatePolicy,
    golden: str | None,
    golden_split: str | None,
    cache_dir: Path | None,
    report_dir: Path,
    actor: str,
    notify: Callable[[str], None] = lambda _: None,
) -> Comparison:
    """Score ``version`` against ``baseline`` as the gate would; write the report under ``report_dir``."""
    from registry.gate.evidence import run_gate  # loads torch

    base_info = store.get_version(name, resolve_alias(name, baseline))
    info = store.get_version(name, resolve_alias(name, version))
    golden_dir, split = gate_golden_set(info, golden, golden_split, policy, notify)
    golden_set = load_golden_set(golden_dir, split)
    gate = run_gate(info, base_info, golden_set, policy, cache_dir=cache_dir)
    decision = gate.decision
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / f"{name}-v{info.version}-vs-v{base_info.version}.html"
    record = DecisionRecord(actor, format_ts(dt.datetime.now(dt.UTC)), "preview: nothing moves", "compare")
    with phase(f"writing the report {report}"):
        report.write_text(
            render_html(decision, name, golden=f"{golden_dir} [{split}]", record=record, changes=gate.changes),
            encoding="utf-8",
        )
    return Comparison(
        model=name,
        baseline=base_info.version,
        version=info.version,
        golden=golden_dir,
        golden_split=split,
        verdict=decision.verdict,
        summary=verdict_sentence(decision),
        decision=decision.to_dict(),
        changes=[
            {
                "query_id": c.query_id,
                "query": c.query,
                "difference": c.difference,
                "baseline_score": c.production_score,
                "version_score": c.candidate_score,
                "baseline_top": c.production_top,
                "version_top": c.candidate_top,
            }
            for c in gate.changes
        ],
        report=str(report),
    )
