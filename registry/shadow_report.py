"""The shadow comparison as a page a release manager reads in ten seconds: one sentence of what
changes, the numbers with their intervals, how the overlaps spread, and the queries whose answers
changed most with both top-5 lists side by side. Self-contained HTML, no scripts, no network."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from embedops.core.text import redaction_sentence
from indexing.shadow import QueryComparison
from registry.gate.report import CAND_COLOR, PROD_COLOR, STYLE

if TYPE_CHECKING:
    from registry.shadow import ShadowResult

EXTRA_STYLE = """
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.6rem} .pair ol{margin:.2rem 0;padding-left:1.3rem}
.pair li{font-size:.82rem;margin:.1rem 0} .same{color:#718096} .new{color:#1a202c;font-weight:600}
.q{font-weight:600;margin-top:1rem}
.note{color:#4a5568;font-size:.9rem;border-left:3px solid #cbd5e0;padding-left:.6rem}
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def headline(result: ShadowResult) -> str:
    """What changes, in one sentence."""
    s = result.summary
    t = s.top1_changed
    return (
        f"On {s.queries:,} live queries, v{result.candidate} would change the top result of "
        f"{t.mean:.0%} of them ({t.low:.0%} to {t.high:.0%}), and its top {s.k} agree with production "
        f"v{result.production}'s at rank-biased overlap {s.rbo.mean:.2f} ({s.rbo.low:.2f} to {s.rbo.high:.2f})."
    )


def overlap_histogram(values: Sequence[float], bins: int = 10) -> str:
    """How the per-query RBO spreads over [0, 1]: red where answers diverge, blue where they agree."""
    width, height, pad = 640, 200, 30
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v * bins))] += 1
    top = max(counts) or 1
    bar_w = (width - 2 * pad) / bins
    parts = [f'<svg role="img" aria-label="histogram of rank-biased overlap" width="{width}" height="{height}">']
    for i, count in enumerate(counts):
        h = (height - 2 * pad) * count / top
        color = "#c53030" if i < bins // 2 else CAND_COLOR
        parts.append(
            f'<rect x="{pad + i * bar_w:.1f}" y="{height - pad - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            f'fill="{color}"><title>RBO {i / bins:.1f}-{(i + 1) / bins:.1f}: {count}</title></rect>'
        )
        if count:
            parts.append(f'<text x="{pad + i * bar_w + 2:.1f}" y="{height - pad - h - 3:.1f}">{count}</text>')
        parts.append(f'<text x="{pad + i * bar_w:.1f}" y="{height - 10}">{i / bins:.1f}</text>')
    parts.append(f'<text x="{width - pad - 4}" y="{height - 10}">1.0</text></svg>')
    return "".join(parts)


def side_by_side(row: QueryComparison, titles: dict[str, str], n: int = 5) -> str:
    """Both top-n lists; a document the other side does not return is in bold."""

    def column(ids: list[str], other: list[str], who: str, color: str) -> str:
        items = "".join(
            f'<li class="{"same" if i in other else "new"}">{_esc(titles.get(i, i))} <small>({_esc(i)})</small></li>'
            for i in ids[:n]
        )
        return f'<div><b style="color:{color}">{who}</b><ol>{items}</ol></div>'

    mark = "top result changed" if row.top1_changed else "same top result"
    return (
        f'<div class="q">"{_esc(row.query)}" <span class="meta">RBO {row.rbo:.2f}, overlap@10 '
        f"{row.overlap:.2f}, {mark}</span></div>"
        f'<div class="pair">{column(row.production, row.candidate, "production", PROD_COLOR)}'
        f"{column(row.candidate, row.production, 'candidate', CAND_COLOR)}</div>"
    )


def render_html(result: ShadowResult, titles: dict[str, str], *, at: str) -> str:
    s = result.summary
    lat = s.latency_ms

    def interval_row(label: str, name: str, fmt: str) -> str:
        i = getattr(s, name)
        return (
            f'<tr><td>{label}</td><td class="num">{i.mean:{fmt}}</td>'
            f'<td class="num">{i.low:{fmt}} to {i.high:{fmt}}</td></tr>'
        )

    changed = "".join(side_by_side(r, titles) for r in result.changed)
    t = result.traffic
    window = f"{t['start']} to {t['end']}" if t.get("start") or t.get("end") else "the whole file"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Shadow: {_esc(result.model)} v{_esc(result.candidate)} vs v{_esc(result.production)}</title>
<style>{STYLE}{EXTRA_STYLE}</style></head><body>
<h1>What v{_esc(result.candidate)} would change for live queries</h1>
<p class="meta">{_esc(result.model)}: production v{_esc(result.production)} ({_esc(result.production_index)}) against
candidate v{_esc(result.candidate)} ({_esc(result.candidate_index)}), corpus {_esc(result.corpus)}
v{result.corpus_version}; {t["sampled"]:,} of {t["total"]:,} queries from {_esc(t["source"])} ({_esc(window)});
{_esc(at)}; {_esc(redaction_sentence(t.get("redactions") or {}))}</p>
<p class="because">{_esc(headline(result))}</p>
<p class="note">Overlap says what changes, not which is better: the golden set decides that
(<code>embedops compare</code>, the gate). Read the queries below to see whether the changes are the ones
the fine-tune was meant to make.</p>
<h2>Summary</h2>
<table><tr><th>per query</th><th>mean</th><th>95% bootstrap interval</th></tr>
{interval_row("rank-biased overlap (p = 0.9) of the top 10", "rbo", ".3f")}
{interval_row(f"overlap@{s.k} (Jaccard)", "overlap", ".3f")}
{interval_row("top result changed", "top1_changed", ".1%")}
{interval_row("top score, candidate minus production", "score_shift", "+.3f")}
</table>
<table><tr><th>latency of a single query (encode + search), {lat["production"]["calls"]:.0f} per side</th>
<th>p50</th><th>p99</th></tr>
<tr><td>production v{_esc(result.production)}</td><td class="num">{lat["production"]["p50"]:.2f} ms</td>
<td class="num">{lat["production"]["p99"]:.2f} ms</td></tr>
<tr><td>candidate v{_esc(result.candidate)}</td><td class="num">{lat["candidate"]["p50"]:.2f} ms</td>
<td class="num">{lat["candidate"]["p99"]:.2f} ms</td></tr></table>
<h2>How the answers' overlap spreads</h2>
{overlap_histogram([r.rbo for r in result.rows])}
<h2>The queries whose answers changed most</h2>
{changed or "<p>No query's answers changed.</p>"}
</body></html>"""
