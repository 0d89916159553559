"""The gate and drift reports as a reader sees them: rendered by headless Chromium, then looked at.

The pages are built from hand-made decisions (no model): what is checked is that the decision record
reaches the screen: the verdict's badge and sentence, who and why, the changed queries, the charts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from monitoring.drift_report import DriftPage, farthest_texts, render_drift_html
from registry.gate.decision import decide
from registry.gate.evidence import QueryChange
from registry.gate.policy import GatePolicy
from registry.gate.report import DecisionRecord, render_html
from tests.browser import rgb, screenshot
from tests.unit.test_gate import BETTER, PRODUCTION

RECORD = DecisionRecord("alice", "2026-11-30T09:15:00.000Z", "payroll questions answered better", "promote")
CHANGES = [
    QueryChange("q7", "how do I run payroll twice a month", 0.2, 1.0, "Pausing a subscription", False,
                "Semi-monthly pay schedules", True),
    QueryChange("q3", "export my invoices to csv", 1.0, 0.5, "Exporting invoices", True, "Invoice templates", False),
]  # fmt: skip


def test_the_gate_report_is_a_decision_record(tmp_path: Path) -> None:
    passed = decide(GatePolicy(n_resamples=500), BETTER, PRODUCTION)
    page = tmp_path / "gate.html"
    page.write_text(render_html(passed, "helpcenter-embedder", golden="examples/helpcenter [test]",
                                run_id="r1", record=RECORD, changes=CHANGES), encoding="utf-8")  # fmt: skip
    text = page.read_text()
    assert "PASS: v2 may replace production v1, because every check holds" in text
    assert "promote by <strong>alice</strong> at 2026-11-30T09:15:00.000Z" in text
    assert "payroll questions answered better" in text and "Semi-monthly pay schedules" in text
    assert text.index("The queries that changed most") < text.index("Metrics side by side")
    colors = screenshot(page, tmp_path / "gate.png")
    assert rgb("#2f855a") in colors and rgb("#2b6cb0") in colors  # the PASS badge, the candidate's bars

    rejected = decide(GatePolicy(n_resamples=500), replace(PRODUCTION, version="2"), PRODUCTION)
    page.write_text(render_html(rejected, "helpcenter-embedder", record=RECORD), encoding="utf-8")
    assert "REJECT: v2 stays out of production, because" in page.read_text()
    assert rgb("#c53030") in screenshot(page, tmp_path / "reject.png")  # the red badge


def drift_page(score: float, drifted: bool, action: str) -> DriftPage:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(30, 8)).astype(np.float32)
    current = np.vstack([reference[:20], rng.normal(5, 1, size=(10, 8))]).astype(np.float32)
    texts = [f"question {i}" for i in range(20)] + [f"payroll question {i}" for i in range(10)]
    return DriftPage(
        model="helpcenter-embedder", version="2", score=score, threshold=0.55, drifted=drifted, action=action,
        reason="score 0.762 >= high threshold 0.6" if drifted else "no drift: score 0.503 < 0.55",
        window_start="2026-11-16T00:00:00+00:00", window_end="2026-11-23T00:00:00+00:00",
        current_source="traffic/live", reference_source="traffic/reference.jsonl", n_current=30, n_reference=30,
        p_value=1e-6, ks_dimensions=5,
        tokenizer={"current": {"unknown_token_rate": 0.01, "truncation_rate": 0.0},
                   "reference": {"unknown_token_rate": 0.0, "truncation_rate": 0.0}},
        examples=farthest_texts(reference, current, texts, limit=5), run_id="r2", evidently_page="evidently.html",
    )  # fmt: skip


def test_the_drift_report_says_what_was_found_with_the_clis_numbers(tmp_path: Path) -> None:
    page = tmp_path / "drift.html"
    page.write_text(render_drift_html(drift_page(0.762, True, "retrain")), encoding="utf-8")
    text = page.read_text()
    assert "DRIFT: the current window&#x27;s embeddings differ from the reference (score 0.762 against" in text
    assert "a retrain was started" in text and "2026-11-16T00:00:00+00:00 to 2026-11-23T00:00:00+00:00" in text
    # The texts shown as drifted are the ones that are: the ten far from every reference text.
    shown = text[text.index("Texts in the region that drifted") :]
    assert shown.count("payroll question") == 5 and 'href="evidently.html"' in text
    colors = screenshot(page, tmp_path / "drift.png", height=1400)
    assert rgb("#c53030") in colors  # the DRIFT badge and the score bar past the threshold

    page.write_text(render_drift_html(drift_page(0.503, False, "none")), encoding="utf-8")
    assert "NO DRIFT: the current window looks like the reference" in page.read_text()
    assert rgb("#2f855a") in screenshot(page, tmp_path / "quiet.png", height=1400)


def test_farthest_texts_are_the_ones_no_reference_text_is_near() -> None:
    reference = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    current = np.array([[1.0, 0.1], [-1.0, 0.0], [0.7, 0.7], [-1.0, 0.0]], dtype=np.float32)
    found = farthest_texts(reference, current, ["near", "opposite", "between", "opposite"], limit=3)
    # "opposite" (cosine 0 to its nearest reference vector) once, then "between" (0.707), then "near".
    assert [text for text, _ in found] == ["opposite", "between", "near"]
    assert found[0][1] == 1.0 and abs(found[1][1] - (1 - np.sqrt(0.5))) < 1e-6


def test_the_shadow_report_says_what_changes_and_shows_both_answers(tmp_path: Path) -> None:
    """Hand-made answers to 4 queries: one unchanged, three with new documents; the page leads with
    the sentence, holds the intervals, the histogram, and both top-5 lists with titles."""
    from indexing.search import Answer, Hit
    from indexing.shadow import compare, most_changed, summarize
    from registry.shadow import ShadowResult
    from registry.shadow_report import render_html as render_shadow

    ten = [f"hc-{i:04d}" for i in range(10)]
    titles = {i: f"Article {n} about payroll" for n, i in enumerate(ten)} | {
        f"new-{i}": f"Fresh article {i}" for i in range(10)
    }

    def answer(query: str, ids: list[str], version: str) -> Answer:
        return Answer(query, [Hit(i, 0.9 - 0.01 * n) for n, i in enumerate(ids)], version, f"idx-v{version}", 4.0, 1.0)

    queries = ["how do I run payroll", "pause my card", "export invoices", "reset password"]
    production = [answer(q, ten, "1") for q in queries]
    candidate = [answer(queries[0], ten, "2")] + [
        answer(q, [f"new-{j}" for j in range(n)] + ten[: 10 - n], "2")
        for n, q in zip((2, 5, 9), queries[1:], strict=True)
    ]
    rows = compare(production, candidate, 10)
    result = ShadowResult(
        model="helpcenter-embedder", production="1", candidate="2", corpus="helpcenter", corpus_version=1,
        production_index="helpcenter-embedder-v1-helpcenter", candidate_index="helpcenter-embedder-v2-helpcenter",
        traffic={"source": "traffic/live", "digest": "d", "total": 2240, "sampled": 4,
                 "start": "2026-11-16T00:00:00+00:00", "end": "2026-11-23T00:00:00+00:00"},
        summary=summarize(rows, 10), changed=most_changed(rows, 10), seconds=1.0, run_id="r3", report=None, rows=rows,
    )  # fmt: skip
    page = tmp_path / "shadow.html"
    page.write_text(render_shadow(result, titles, at="2026-12-03T10:00:00+00:00"), encoding="utf-8")
    text = page.read_text()
    assert "On 4 live queries, v2 would change the top result of 75% of them" in text
    assert text.index("would change the top result") < text.index("Summary") < text.index("changed most")
    shown = text[text.index("The queries whose answers changed most") :]
    assert shown.index("export invoices") < shown.index("pause my card")  # lowest RBO first
    assert "Fresh article 0 <small>(new-0)</small>" in shown and "Article 0 about payroll" in shown  # titles
    colors = screenshot(page, tmp_path / "shadow.png", height=1400)
    assert rgb("#c53030") in colors and rgb("#2b6cb0") in colors  # diverging and agreeing bars of the histogram
