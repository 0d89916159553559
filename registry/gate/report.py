"""The gate's decision as a self-contained HTML page: tables and inline SVG charts, no scripts, no network."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.gate.decision import GateDecision

if TYPE_CHECKING:
    from registry.gate.evidence import QueryChange


@dataclass(frozen=True)
class DecisionRecord:
    """Who asked for the gate, when, and why: the report is the decision's record, not just its numbers."""

    actor: str
    at: str  # ISO time, UTC
    reason: str
    action: str  # promote, gate (--gate-only), compare (a preview that moves nothing)
    # One line per corpus index the candidate serves with ("index tiny-v2-hc: 150 rows of hc v1, built in 0.3 s").
    indexes: tuple[str, ...] = ()
    # The shadow comparison on live queries, when the policy asks for one: what changes, in lines.
    shadow: tuple[str, ...] = ()


PROD_COLOR, CAND_COLOR = "#8c96a8", "#2b6cb0"
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:960px;color:#1a202c}
h1{font-size:1.5rem;margin-bottom:.25rem} h2{font-size:1.1rem;margin-top:2rem}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2f855a} .reject{background:#c53030}
table{border-collapse:collapse;width:100%;font-size:.9rem} td,th{border-bottom:1px solid #e2e8f0;padding:.35rem .5rem;
text-align:left} th{background:#f7fafc} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2f855a;font-weight:600} .bad{color:#c53030;font-weight:600} .waived{color:#b7791f;font-weight:600}
.meta{color:#4a5568;font-size:.9rem} svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#2d3748}
.because{font-size:1.05rem;margin:.6rem 0} .hit{font-size:.82rem;color:#2d3748} .rel{color:#2f855a} .irr{color:#c53030}
"""


def verdict_sentence(d: GateDecision) -> str:
    """The decision in one sentence: the verdict, because of what."""
    metric = d.primary_metric
    delta = d.candidate_metrics.get(metric, 0.0) - d.production_metrics.get(metric, 0.0)
    p_value = d.comparison.get("p_value")
    evidence = f"{metric} {delta:+.4f}" + (f" (p = {p_value:.3g})" if isinstance(p_value, float) else "")
    failed = [c for c in d.checks if not c.passed]
    if d.passed:
        waived = [c.name for c in d.checks if c.waived]
        extra = f"; waived: {', '.join(waived)}" if waived else ""
        return (
            f"PASS: v{d.candidate_version} may replace production v{d.production_version}, because every "
            f"check holds: {evidence} against production{extra}."
        )
    reasons = "; ".join(f"{c.name}: {c.detail}" for c in failed)
    return f"REJECT: v{d.candidate_version} stays out of production, because {reasons} ({evidence})."


def changes_table(changes: Sequence[QueryChange], metric: str) -> str:
    if not changes:
        return "<p>No query changed its score.</p>"
    rows = []
    for c in changes:
        mark = "ok" if c.difference > 0 else "bad"

        def hit(text: str, relevant: bool) -> str:
            label = '<span class="rel">relevant</span>' if relevant else '<span class="irr">not relevant</span>'
            return f'<span class="hit">{_esc(text)}</span> ({label})'

        rows.append(
            f'<tr><td>{_esc(c.query)}</td><td class="num {mark}">{c.difference:+.3f}</td>'
            f"<td>{hit(c.production_top, c.production_top_relevant)}</td>"
            f"<td>{hit(c.candidate_top, c.candidate_top_relevant)}</td></tr>"
        )
    return (
        f"<table><tr><th>query</th><th>{_esc(metric)} change</th><th>production's top hit</th>"
        f"<th>candidate's top hit</th></tr>{''.join(rows)}</table>"
    )


def _esc(value: object) -> str:
    return html.escape(str(value))


def metric_bars(
    names: Sequence[str],
    production: dict[str, float],
    candidate: dict[str, float],
    *,
    scale: float = 1.0,
    unit: str = "",
) -> str:
    """Grouped horizontal bars, one pair per metric; ``scale`` is the value of a full-width bar."""
    row, width, left = 34, 560, 130
    height = row * len(names) + 30
    parts = [f'<svg role="img" aria-label="metrics side by side" width="{width + left + 60}" height="{height}">']
    for i, name in enumerate(names):
        y = 10 + i * row
        parts.append(f'<text x="0" y="{y + 14}">{_esc(name)}</text>')
        for j, (value, color) in enumerate(((production[name], PROD_COLOR), (candidate[name], CAND_COLOR))):
            w = max(0.0, min(1.0, value / scale)) * width
            label = f"{value:.2f} {unit}" if unit else f"{value:.4f}"
            parts.append(
                f'<rect x="{left}" y="{y + j * 13}" width="{w:.1f}" height="12" fill="{color}"/>'
                f'<text x="{left + w + 4:.1f}" y="{y + j * 13 + 10}">{label}</text>'
            )
    parts.append(
        f'<rect x="{left}" y="{height - 14}" width="10" height="10" fill="{PROD_COLOR}"/>'
        f'<text x="{left + 14}" y="{height - 5}">production</text>'
        f'<rect x="{left + 100}" y="{height - 14}" width="10" height="10" fill="{CAND_COLOR}"/>'
        f'<text x="{left + 114}" y="{height - 5}">candidate</text></svg>'
    )
    return "".join(parts)


def difference_histogram(differences: Sequence[float], bins: int = 21) -> str:
    """Histogram of per-query differences (candidate - production), symmetric around zero."""
    width, height, pad = 640, 220, 30
    if not differences:
        return "<p>No per-query differences.</p>"
    span = max(0.05, max(abs(d) for d in differences))
    edges = [-span + 2 * span * i / bins for i in range(bins + 1)]
    counts = [0] * bins
    for d in differences:
        counts[min(bins - 1, int((d + span) / (2 * span) * bins))] += 1
    top = max(counts)
    bar_w = (width - 2 * pad) / bins
    parts = [f'<svg role="img" aria-label="histogram of per-query differences" width="{width}" height="{height}">']
    for i, count in enumerate(counts):
        h = (height - 2 * pad) * count / top
        mid = (edges[i] + edges[i + 1]) / 2
        color = "#2f855a" if mid > 1e-9 else ("#c53030" if mid < -1e-9 else "#718096")
        parts.append(
            f'<rect x="{pad + i * bar_w:.1f}" y="{height - pad - h:.1f}" width="{bar_w - 1:.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{edges[i]:+.3f}..{edges[i + 1]:+.3f}: {count}'
            f"</title></rect>"
        )
        if count:
            parts.append(f'<text x="{pad + i * bar_w + 2:.1f}" y="{height - pad - h - 3:.1f}">{count}</text>')
    zero = pad + (width - 2 * pad) / 2
    parts.append(
        f'<line x1="{zero}" y1="{pad / 2}" x2="{zero}" y2="{height - pad}" stroke="#1a202c" '
        f'stroke-dasharray="4 3"/><text x="{pad}" y="{height - 8}">{-span:+.2f}</text>'
        f'<text x="{zero - 4}" y="{height - 8}">0</text>'
        f'<text x="{width - pad - 30}" y="{height - 8}">{span:+.2f}</text></svg>'
    )
    return "".join(parts)


def latency_bars(production: dict[str, float], candidate: dict[str, float]) -> str:
    if not production or not candidate:
        return "<p>Latency was not measured.</p>"
    keys = [k for k in ("p50", "p95", "p99") if k in production and k in candidate]
    scale = max(max(production[k], candidate[k]) for k in keys) or 1.0
    return metric_bars(keys, production, candidate, scale=scale, unit="ms")


def render_html(
    decision: GateDecision,
    model_name: str,
    *,
    golden: str = "",
    run_id: str | None = None,
    record: DecisionRecord | None = None,
    changes: Sequence[QueryChange] = (),
) -> str:
    d = decision
    who = (
        f'<p class="meta">{_esc(record.action)} by <strong>{_esc(record.actor)}</strong> at {_esc(record.at)}'
        f" &middot; reason: {_esc(record.reason or '-')}</p>"
        if record
        else ""
    )
    rows = []
    for c in d.checks:
        status = ("waived", "waived") if c.waived else (("ok", "pass") if c.passed else ("bad", "fail"))
        observed = f"{c.observed:.4g}" if isinstance(c.observed, float) else _esc(c.observed)
        limit = f"{c.limit:.4g}" if isinstance(c.limit, float) else _esc(c.limit)
        rows.append(
            f'<tr><td>{_esc(c.name)}</td><td class="{status[0]}">{status[1]}</td>'
            f'<td class="num">{observed}</td><td class="num">{limit}</td><td>{_esc(c.detail)}</td></tr>'
        )
    names = [n for n in d.production_metrics if n in d.candidate_metrics]
    metric_rows = "".join(
        f'<tr><td>{_esc(n)}</td><td class="num">{d.production_metrics[n]:.4f}</td>'
        f'<td class="num">{d.candidate_metrics[n]:.4f}</td>'
        f'<td class="num">{d.candidate_metrics[n] - d.production_metrics[n]:+.4f}</td></tr>'
        for n in names
    )
    cmp = d.comparison
    indexes = record.indexes if record else ()
    reindex = (
        "<p><strong>The candidate's vectors differ from production's: each corpus needs its own index "
        "(production's cannot answer its queries).</strong></p>"
        if d.reindex_required and not indexes
        else ""
    )
    if indexes:
        items = "".join(f"<li>{_esc(line)}</li>" for line in indexes)
        reindex += f"<h2>Indexes the candidate serves with</h2><ul>{items}</ul>"
    if record and record.shadow:
        items = "".join(f"<li>{_esc(line)}</li>" for line in record.shadow)
        reindex += f"<h2>What changes for live queries (shadow)</h2><ul>{items}</ul>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gate: {_esc(model_name)} v{_esc(d.candidate_version)}</title>
<style>{STYLE}</style></head><body>
<h1>Promotion gate: {_esc(model_name)} v{_esc(d.candidate_version)} vs production v{_esc(d.production_version)}</h1>
<p><span class="verdict {d.verdict}">{d.verdict.upper()}</span></p>
<p class="because">{_esc(verdict_sentence(d))}</p>{who}
<p class="meta">golden set {_esc(golden)} &middot; digest {_esc(d.golden_digest[:16])} &middot;
decision run {_esc(run_id or "-")}</p>{reindex}
<h2>Checks</h2>
<table><tr><th>check</th><th>result</th><th>observed</th><th>limit</th><th>detail</th></tr>{"".join(rows)}</table>
<h2>The queries that changed most</h2>
{changes_table(changes, d.primary_metric)}
<h2>Metrics side by side</h2>
{metric_bars(names, d.production_metrics, d.candidate_metrics)}
<table><tr><th>metric</th><th>production</th><th>candidate</th><th>difference</th></tr>{metric_rows}</table>
<h2>Per-query {_esc(d.primary_metric)} differences (candidate &minus; production)</h2>
<p class="meta">{len(d.differences)} queries; mean {cmp.get("mean_difference", 0):+.4f}, 95% CI
[{cmp.get("ci_low", 0):+.4f}, {cmp.get("ci_high", 0):+.4f}], p = {cmp.get("p_value", 1):.4g}
({_esc(cmp.get("alternative", ""))})</p>
{difference_histogram(list(d.differences.values()))}
<h2>Single-text encode latency</h2>
{latency_bars(d.production_latency_ms, d.candidate_latency_ms)}
</body></html>
"""
