"""`embedops shadow`: production and a candidate answer the same live queries, each with its own
model and its own verified index; what changes is measured, reported and logged to MLflow.

A run of its own in the ``shadow`` experiment (parameters naming both versions, both indexes and the
traffic window; summary metrics; the per-query table as Parquet; the HTML report), and tags on the
candidate's version pointing at it, so the registry shows what the candidate would change.
Nothing moves: a shadow comparison is evidence for a release manager, never a promotion.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedops.core.errors import DataError, VectorIndexError
from embedops.core.names import REPORT_FILE_TAG, TRAFFIC_OLDEST_TAG
from embedops.core.progress import phase
from indexing.corpus_store import CorpusStore
from indexing.search import Searcher
from indexing.shadow import QueryComparison, ShadowSummary, compare, most_changed, summarize
from registry import store
from registry.index_moves import IndexRoots
from registry.indexes import resolve, searcher_in

EXPERIMENT = "shadow"
MIN_QUERIES = 10  # fewer cannot say anything about a distribution of overlaps
LATENCY_QUERIES = 100  # queries also answered one at a time by each side, alternating, for p50/p99


@dataclass(frozen=True)
class Traffic:
    """The live queries compared, and where they came from (``monitoring.windows.Window`` fits)."""

    texts: list[str]
    source: str
    digest: str
    total: int  # queries in the window before sampling
    start: str | None = None
    end: str | None = None
    redactions: dict[str, int] = field(default_factory=dict)  # personal data masked in the texts, per type

    def sampled(self, size: int, seed: int = 0) -> Traffic:
        """At most ``size`` of the texts, drawn with a fixed seed (a replay compares the same queries)."""
        import random

        if len(self.texts) <= size:
            return self
        from dataclasses import replace

        texts = random.Random(seed).sample(self.texts, size)
        return replace(self, texts=texts)


@dataclass(frozen=True)
class ShadowResult:
    model: str
    production: str
    candidate: str
    corpus: str
    corpus_version: int
    production_index: str
    candidate_index: str
    traffic: dict[str, Any]
    summary: ShadowSummary
    changed: list[QueryComparison]  # the queries whose answers changed most
    seconds: float
    run_id: str | None
    report: str | None
    rows: list[QueryComparison] = field(repr=False, default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "production": self.production,
            "candidate": self.candidate,
            "corpus": self.corpus,
            "corpus_version": self.corpus_version,
            "production_index": self.production_index,
            "candidate_index": self.candidate_index,
            "traffic": self.traffic,
            "summary": self.summary.to_dict(),
            "changed": [c.to_dict() for c in self.changed],
            "seconds": round(self.seconds, 3),
            "run_id": self.run_id,
            "report": self.report,
        }


def check_pair(production: Searcher, candidate: Searcher) -> None:
    """Two different versions whose indexes hold the same corpus version, or a clear error."""
    if production.model.version == candidate.model.version:
        raise VectorIndexError(
            f"the candidate is production (v{production.model.version}): nothing to compare; "
            "name another version with --candidate"
        )
    p, c = production.manifest, candidate.manifest
    if p.corpus_version != c.corpus_version:
        raise VectorIndexError(
            f"the indexes hold different versions of corpus '{p.corpus}' (production's v{p.corpus_version}, "
            f"the candidate's v{c.corpus_version}), so their answers would differ by the documents too: "
            f"embedops index sync {p.model.name} --corpus {p.corpus}"
        )


def lines(result: ShadowResult) -> tuple[str, ...]:
    """The comparison in a few lines, for the gate's report."""
    from registry.shadow_report import headline

    s = result.summary
    return (
        headline(result),
        f"overlap@{s.k} {s.overlap.mean:.3f} [{s.overlap.low:.3f}, {s.overlap.high:.3f}]; p99 encode + search "
        f"{s.latency_ms['production']['p99']:.1f} ms (production) vs {s.latency_ms['candidate']['p99']:.1f} ms",
        f"queries from {result.traffic['source']}; report in MLflow run {result.run_id} (experiment {EXPERIMENT})",
    )


def run_shadow(
    roots: IndexRoots,
    name: str,
    candidate: str,
    corpus: str,
    traffic: Traffic,
    *,
    k: int = 10,
    report_dir: Path | None = None,
    record: bool = True,
    seed: int = 0,
) -> ShadowResult:
    """Compare ``candidate`` with production on ``traffic``'s queries; log and report unless ``record`` is off."""
    if len(traffic.texts) < MIN_QUERIES:
        raise DataError(
            f"the traffic window has {len(traffic.texts)} queries, fewer than the {MIN_QUERIES} a shadow "
            "comparison needs: widen --start/--end or add traffic",
            path=traffic.source,
        )
    started = time.perf_counter()
    production_info, candidate_info = resolve(name, "production"), resolve(name, candidate)
    with phase(f"loading production v{production_info.version} and its index of {corpus}"):
        production = searcher_in(roots.indexes, name, production_info.version, corpus)
    with phase(f"loading the candidate v{candidate_info.version} and its index of {corpus}"):
        challenger = searcher_in(roots.indexes, name, candidate_info.version, corpus)
    check_pair(production, challenger)
    n = len(traffic.texts)
    with phase(f"production v{production.model.version} answering {n:,} live queries", count=n, unit="queries"):
        before = production.search_batch(traffic.texts, k)
    with phase(f"candidate v{challenger.model.version} answering {n:,} live queries", count=n, unit="queries"):
        after = challenger.search_batch(traffic.texts, k)
    rows = compare(before, after, k)
    single = traffic.texts[:LATENCY_QUERIES]
    with phase(f"latency: {len(single)} single queries per side, alternating"):
        samples: dict[str, list[float]] = {"production": [], "candidate": []}
        for text in single:
            for side, searcher in (("production", production), ("candidate", challenger)):
                t0 = time.perf_counter()
                searcher.search([text], k)
                samples[side].append((time.perf_counter() - t0) * 1000)
    summary = summarize(rows, k, seed=seed, latency_samples=samples)
    changed = most_changed(rows, 10)
    seconds = time.perf_counter() - started
    result = ShadowResult(
        model=name,
        production=production.model.version,
        candidate=challenger.model.version,
        corpus=corpus,
        corpus_version=production.manifest.corpus_version,
        production_index=production.manifest.index_id,
        candidate_index=challenger.manifest.index_id,
        traffic={
            "source": traffic.source,
            "digest": traffic.digest,
            "total": traffic.total,
            "sampled": n,
            "start": traffic.start,
            "end": traffic.end,
            "redactions": traffic.redactions,
        },
        summary=summary,
        changed=changed,
        seconds=seconds,
        run_id=None,
        report=None,
        rows=rows,
    )
    if not record:
        return result
    from registry.shadow_report import render_html

    titles = document_titles(roots.corpora, corpus, production.manifest.corpus_version, rows)
    page = render_html(result, titles, at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    report = None
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        path = report_dir / f"shadow-{name}-v{result.production}-v{result.candidate}.html"
        path.write_text(page, encoding="utf-8")
        report = str(path)
    with phase("logging the comparison to MLflow"):
        run_id = log_run(result, rows, page, roots.artifact_root, report_file=report)
    return ShadowResult(**{**result.__dict__, "run_id": run_id, "report": report})


def document_titles(root: Path, corpus: str, version: int, rows: list[QueryComparison]) -> dict[str, str]:
    """The first words of each document a compared answer names, for the report."""
    wanted = {i for r in rows for i in r.production[:5] + r.candidate[:5]}
    corpora = CorpusStore(root)
    documents = corpora.documents(corpora.get(corpus, version))
    return {d.id: " ".join(d.text.split()[:14]) for d in documents if d.id in wanted}


def log_run(
    result: ShadowResult,
    rows: list[QueryComparison],
    page: str,
    artifact_root: str | None,
    *,
    report_file: str | None = None,
) -> str:
    """The comparison as a run in ``shadow``; tags on the candidate's version point at it."""
    import pandas as pd
    from mlflow.entities import Metric, Param, RunTag

    from embedops.core.runs import ensure_experiment

    client = store.client()
    experiment = ensure_experiment(EXPERIMENT, artifact_root)
    run = client.create_run(experiment, run_name=f"{result.model} v{result.production} vs v{result.candidate}")
    run_id: str = run.info.run_id
    params = {
        "model": result.model,
        "production_version": result.production,
        "candidate_version": result.candidate,
        "corpus": result.corpus,
        "corpus_version": result.corpus_version,
        "production_index": result.production_index,
        "candidate_index": result.candidate_index,
        "traffic_source": result.traffic["source"],
        "traffic_digest": result.traffic["digest"],
        "traffic_total": result.traffic["total"],
        "sample": result.traffic["sampled"],
        "window_start": result.traffic["start"],
        "window_end": result.traffic["end"],
        "k": result.summary.k,
    }
    try:
        stamp = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[
                Metric(k, v, stamp, 0) for k, v in {**result.summary.metrics(), "seconds": result.seconds}.items()
            ],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[
                RunTag("embedops.model", result.model),
                RunTag("embedops.production_version", result.production),
                RunTag("embedops.candidate_version", result.candidate),
            ]
            # retention counts the run's age from its oldest query, and purges the local report with it
            + ([RunTag(TRAFFIC_OLDEST_TAG, result.traffic["start"])] if result.traffic["start"] else [])
            + ([RunTag(REPORT_FILE_TAG, report_file)] if report_file else []),
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            pd.DataFrame([r.to_dict() for r in rows]).to_parquet(folder / "shadow_queries.parquet", index=False)
            (folder / "shadow_report.html").write_text(page, encoding="utf-8")
            summary = {k: v for k, v in result.to_dict().items() if k not in ("run_id", "report")}
            (folder / "shadow_summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
            client.log_artifacts(run_id, str(folder))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    s = result.summary
    store.tag_version(
        result.model,
        result.candidate,
        {
            "shadow.run_id": run_id,
            "shadow.against": result.production,
            "shadow.rbo": f"{s.rbo.mean:.4f}",
            "shadow.top1_changed": f"{s.top1_changed.mean:.4f}",
            "shadow.queries": str(s.queries),
        },
    )
    return run_id
