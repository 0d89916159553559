"""embedops' own drift report: one page that says what was compared, what was found and what happens
next, in the numbers the CLI printed. Evidently's widgets stay available as a second page.

Everything is computed by the drift job; this module only lays it out (no scripts, no network).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embedops.core.text import redaction_sentence

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:960px;color:#1a202c}
h1{font-size:1.5rem;margin-bottom:.25rem} h2{font-size:1.1rem;margin-top:2rem}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;color:#fff;font-weight:600}
.drift{background:#c53030} .nodrift{background:#2f855a} .because{font-size:1.05rem;margin:.6rem 0}
table{border-collapse:collapse;width:100%;font-size:.9rem} td,th{border-bottom:1px solid #e2e8f0;padding:.35rem .5rem;
text-align:left} th{background:#f7fafc} td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#4a5568;font-size:.9rem} svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#2d3748}
"""


@dataclass(frozen=True)
class DriftPage:
    """What the page shows; every number is the drift job's own (the CLI prints the same)."""

    model: str
    version: str
    score: float  # domain-classifier ROC AUC
    threshold: float
    drifted: bool
    action: str  # the trigger's: retrain or none
    reason: str
    window_start: str | None
    window_end: str | None
    current_source: str
    reference_source: str
    n_current: int
    n_reference: int
    p_value: float
    ks_dimensions: int
    tokenizer: dict[str, dict[str, float]]  # current / reference -> unknown_token_rate, truncation_rate
    examples: Sequence[tuple[str, float]]  # current texts farthest from every reference text, with that distance
    run_id: str
    evidently_page: str | None  # the relative link to Evidently's report, None when it was not built
    redactions: dict[str, int] = field(default_factory=dict)  # personal data masked in the current window


def farthest_texts(
    reference: np.ndarray, current: np.ndarray, texts: Sequence[str], *, limit: int = 8
) -> list[tuple[str, float]]:
    """The current texts in the region that drifted: those whose nearest reference text is farthest
    away (cosine distance), with that distance, farthest first. Duplicates are shown once."""

    def unit(x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms == 0, 1, norms)

    nearest = (unit(current) @ unit(reference).T).max(axis=1)
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for i in np.argsort(nearest, kind="stable"):
        if texts[i] not in seen:
            seen.add(texts[i])
            out.append((texts[i], float(1 - nearest[i])))
        if len(out) == limit:
            break
    return out


def _esc(value: object) -> str:
    return html.escape(str(value))


def score_scale(score: float, threshold: float, width: int = 640) -> str:
    """A 0.5-1.0 scale (0.5: the windows cannot be told apart) with the threshold and the score marked."""
    pad, height = 20, 56

    def x(value: float) -> float:
        return pad + (min(max(value, 0.5), 1.0) - 0.5) / 0.5 * (width - 2 * pad)

    color = "#c53030" if score >= threshold else "#2f855a"
    return (
        f'<svg role="img" aria-label="drift score on its scale" width="{width}" height="{height}">'
        f'<rect x="{pad}" y="18" width="{width - 2 * pad}" height="10" fill="#e2e8f0"/>'
        f'<rect x="{pad}" y="18" width="{x(score) - pad:.1f}" height="10" fill="{color}"/>'
        f'<line x1="{x(threshold):.1f}" y1="10" x2="{x(threshold):.1f}" y2="36" stroke="#1a202c" '
        'stroke-dasharray="3 2"/>'
        f'<text x="{x(threshold) + 4:.1f}" y="12">threshold {threshold}</text>'
        f'<text x="{pad}" y="50">0.5 (same distribution)</text><text x="{width - pad - 22}" y="50">1.0</text>'
        f'<text x="{min(x(score), width - pad - 60):.1f}" y="50">score {score:.3f}</text></svg>'
    )


def sentence(page: DriftPage) -> str:
    compared = f"score {page.score:.3f} against threshold {page.threshold}"
    if page.drifted:
        then = "a retrain was started" if page.action == "retrain" else f"no retrain: {page.reason}"
        return f"DRIFT: the current window's embeddings differ from the reference ({compared}); {then}."
    return f"NO DRIFT: the current window looks like the reference ({compared}); {page.reason}."


def render_drift_html(page: DriftPage) -> str:
    span = f"{page.window_start or '?'} to {page.window_end or '?'}" if page.window_start or page.window_end else "-"
    signals = "".join(
        f"<tr><td>{_esc(label)}</td><td class='num'>{page.tokenizer['reference'][key]:.2%}</td>"
        f"<td class='num'>{page.tokenizer['current'][key]:.2%}</td></tr>"
        for key, label in (("unknown_token_rate", "unknown tokens"), ("truncation_rate", "texts truncated"))
    )
    examples = "".join(
        f"<tr><td>{_esc(text)}</td><td class='num'>{distance:.3f}</td></tr>" for text, distance in page.examples
    )
    evidently = (
        f'<p><a href="{_esc(page.evidently_page)}">Evidently\'s drift widgets</a> (a second page, same vectors).</p>'
        if page.evidently_page
        else "<p class='meta'>Evidently's widgets were not built for this window.</p>"
    )
    badge = ("drift", "DRIFT") if page.drifted else ("nodrift", "NO DRIFT")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift: {_esc(page.model)} v{_esc(page.version)}</title>
<style>{STYLE}</style></head><body>
<h1>Drift: {_esc(page.model)} v{_esc(page.version)} (production)</h1>
<p><span class="verdict {badge[0]}">{badge[1]}</span></p>
<p class="because">{_esc(sentence(page))}</p>
<p class="meta">window {_esc(span)} &middot; {page.n_current} current texts from {_esc(page.current_source)}
&middot; {page.n_reference} reference texts from {_esc(page.reference_source)}
&middot; drift run {_esc(page.run_id)}</p>
<h2>Score</h2>
{score_scale(page.score, page.threshold)}
<p class="meta">A classifier is trained to tell the two windows apart in the model's embedding space; its ROC AUC is
the score (0.5: it cannot). Per dimension, {page.ks_dimensions} dimensions differ (KS, p = {page.p_value:.3g}).
Trigger: <strong>{_esc(page.action)}</strong> ({_esc(page.reason)}).</p>
<h2>Tokenizer</h2>
<table><tr><th>signal</th><th>reference</th><th>current</th></tr>{signals}</table>
<h2>Texts in the region that drifted</h2>
<p class="meta">The current texts whose nearest reference text is farthest away (cosine distance).</p>
<table><tr><th>text</th><th>distance to the nearest reference text</th></tr>{examples}</table>
<p class="meta">{_esc(redaction_sentence(page.redactions))}; the texts shown are the redacted ones.</p>
<h2>Evidently</h2>
{evidently}
</body></html>
"""
