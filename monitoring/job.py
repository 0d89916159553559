"""A drift job: embed reference and current traffic with the production model, score, decide, log.

The retrain itself is not imported here (monitoring never imports training): the caller hands in
a ``retrain`` callable, and the trigger decides whether it runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from embedops.core.errors import EmbedopsError
from embedops.core.names import TRAFFIC_OLDEST_TAG
from embedops.core.progress import phase, say
from embedops.core.runs import ensure_experiment
from embedops.core.times import parse_iso
from evaluation.cache import CacheKey, EmbeddingCache
from evaluation.evaluator import encode
from evaluation.precision import Precision, autocast, effective_precision
from monitoring.config import DriftConfig
from monitoring.detect import drift_scores
from monitoring.drift_report import DriftPage, farthest_texts
from monitoring.retention import cutoff_of, past_retention, purge_traffic
from monitoring.state import TriggerStore
from monitoring.tokens import token_signals
from monitoring.trigger import TriggerDecision
from monitoring.windows import Window
from registry import store
from registry.verified import load_version

MONITORING_EXPERIMENT = "monitoring"
EVIDENTLY_PAGE = "evidently.html"  # beside drift_report.html, which links to it
# Monitoring never imports training: the retrain arrives as a callable, and its result as the plain
# dict its own ``to_dict`` made.
RetrainFn = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class DriftResult:
    """One drift window's score and decision; ``to_dict`` is ``drift --json``."""

    model: str
    version: str  # the production version whose embeddings were compared
    score: float  # domain-classifier ROC AUC: 0.5 is no drift
    threshold: float
    p_value: float
    ks_dimensions: int
    drifted: bool
    # sizes and digests of the windows; the current one's start and end, if given; personal data redacted per type
    window: dict[str, Any]
    tokenizer: dict[str, dict[str, float]]  # unknown-token and truncation rates, current and reference
    trigger: TriggerDecision
    idempotency_key: str
    run_id: str
    report_logged: bool
    retrain: dict[str, Any] | None = None
    retrain_error: str | None = None
    # the retention purge this job ran: days, what it removed per kind, or the error that stopped it
    retention: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def embed_window(
    loaded: Any,
    window: Window,
    *,
    precision: Precision,
    cache: EmbeddingCache | None,
    progress: bool,
    what: str,
    keep_after: dt.datetime | None = None,
) -> np.ndarray:
    """Vectors for a window, cached by (model weights, window digest, max_seq_length, precision); traffic
    already older than ``keep_after`` (retention) is embedded but never cached."""
    key = CacheKey(loaded.digest, window.digest, int(loaded.model.max_seq_length), precision)
    cached = cache.load(key, len(window.texts)) if cache else None
    if cached is not None:
        say(f"{len(window.texts)} {what} texts' vectors from the cache")
        return cached
    n = len(window.texts)
    with phase(f"embedding {n} {what} texts with {loaded.ref}", count=n), autocast(precision):
        vectors = encode(loaded.model, window.texts, batch_size=64, progress=progress, what=f"{what} texts")
    if cache and not (keep_after and window.oldest and past_retention(parse_iso(window.oldest), keep_after)):
        cache.save(
            key, vectors, traffic={"oldest": window.oldest, "source": window.source} if window.is_traffic else None
        )
    return vectors


def log_report(reference: np.ndarray, current: np.ndarray, *, threshold: float) -> bool:
    """Evidently's HTML report (``drift/evidently.html``) as an artifact of the active run. A report that
    fails to build (its t-SNE refuses small windows) costs the report, never the drift result."""
    import mlflow

    from monitoring.report import write_evidently_report

    try:
        with phase("building the Evidently drift report"), tempfile.TemporaryDirectory() as tmp:
            path = write_evidently_report(reference, current, Path(tmp) / EVIDENTLY_PAGE, threshold=threshold)
            mlflow.log_artifact(str(path), artifact_path="drift")
    except Exception as exc:  # Evidently and scipy raise many kinds; the message is what matters
        problem = f"{type(exc).__name__}: {exc}"[:500]
        say(f"no Evidently report: {problem}")
        mlflow.set_tag("report_error", problem)
        return False
    return True


def log_drift_page(page: DriftPage) -> None:
    """embedops' own report (``drift/drift_report.html``): cheap, so every drift run has one."""
    import mlflow

    from monitoring.drift_report import render_drift_html

    mlflow.log_text(render_drift_html(page), "drift/drift_report.html")


def idempotency_key(version: str, reference: Window, current: Window, config: DriftConfig) -> str:
    parts = [version, reference.digest, current.digest, config.digest()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def run_drift(
    name: str,
    reference: Window,
    current: Window,
    config: DriftConfig,
    *,
    trigger_store: TriggerStore,
    cache_dir: Path | None,
    artifact_root: str | None,
    retrain: RetrainFn | None = None,
    force_report: bool = False,
    progress: bool = True,
    report_dir: Path | None = None,
) -> DriftResult:
    """Score ``current`` against ``reference``, let the trigger decide, log the run, start the retrain if
    told to, and purge stored traffic past ``config.retention_days`` (``report_dir``: local shadow reports)."""
    import mlflow

    version = store.production_version(name, ": drift is measured with the production model")
    with phase(f"loading production models:/{name}/{version} (checked against its manifest)"):
        loaded = load_version(store.get_version(name, version))
    precision = effective_precision(config.precision)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    keep_after = cutoff_of(dt.datetime.now(dt.UTC), config.retention_days)
    embed = partial(embed_window, loaded, precision=precision, cache=cache, progress=progress, keep_after=keep_after)
    ref_vectors = embed(reference, what="reference")
    cur_vectors = embed(current, what="current")
    n = len(ref_vectors) + len(cur_vectors)
    with phase(f"scoring drift: a classifier between the windows, {n} vectors", count=n, unit="vectors"):
        scores = drift_scores(ref_vectors, cur_vectors, pca_components=config.pca_components)
    max_len = int(loaded.model.max_seq_length)
    signals = {
        "current": token_signals(loaded.model.tokenizer, current.texts, max_len).to_dict(),
        "reference": token_signals(loaded.model.tokenizer, reference.texts, max_len).to_dict(),
    }
    key = idempotency_key(version, reference, current, config)
    holder = f"{socket.gethostname()}:{os.getpid()}"

    experiment_id = ensure_experiment(MONITORING_EXPERIMENT, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"drift-{name}-v{version}") as run:
        decision = trigger_store.evaluate(
            model=name,
            version=version,
            key=key,
            score=scores.auc,
            window_size=len(current.texts),
            policy=config.trigger,
            holder=holder,
            run_id=run.info.run_id,
            can_retrain=retrain is not None,
        )
        mlflow.log_params(
            {
                "model": name,
                "version": version,
                "reference": reference.source,
                "current": current.source,
                "retrain_threshold": config.trigger.retrain_threshold,
            }
            | {k: v for k, v in zip(("window_start", "window_end"), current.span, strict=True) if v}
        )
        # Stamped with the window's end, MLflow's time axis plots drift over traffic time, not job time.
        mlflow.log_metrics(
            step=0,
            timestamp=int(current.end.timestamp() * 1000) if current.end else None,
            metrics={
                "drift_auc": scores.auc,
                "ks_p_value": scores.ks_p_value,
                "ks_dimensions": scores.ks_dimensions,
                "n_reference": scores.n_reference,
                "n_current": scores.n_current,
                "unknown_token_rate": signals["current"]["unknown_token_rate"],
                "truncation_rate": signals["current"]["truncation_rate"],
                "reference_unknown_token_rate": signals["reference"]["unknown_token_rate"],
                "reference_truncation_rate": signals["reference"]["truncation_rate"],
                "drifted": float(decision.drifted),
            }
            | {f"redacted_{kind}": n for kind, n in current.redactions.items()},
        )
        mlflow.set_tags(
            {
                "reference_digest": reference.digest,
                "window_digest": current.digest,
                "idempotency_key": key,
                "trigger_action": decision.action,
                "trigger_reason": decision.reason,
                "embedops.job": "drift",
            }
            # The page's texts are the current window's: its age is theirs. (A reference of real traffic is a
            # fixed baseline, often older than the limit; its own cache entry ages by it.)
            | ({TRAFFIC_OLDEST_TAG: current.oldest} if current.oldest else {})
        )
        report_logged = False
        if force_report or (decision.drifted and config.report == "on_drift") or config.report == "always":
            report_logged = log_report(ref_vectors, cur_vectors, threshold=config.trigger.retrain_threshold)
        log_drift_page(
            DriftPage(
                model=name,
                version=version,
                score=scores.auc,
                threshold=config.trigger.retrain_threshold,
                drifted=decision.drifted,
                action=decision.action,
                reason=decision.reason,
                window_start=current.span[0],
                window_end=current.span[1],
                current_source=current.source,
                reference_source=reference.source,
                n_current=len(current.texts),
                n_reference=len(reference.texts),
                p_value=scores.ks_p_value,
                ks_dimensions=scores.ks_dimensions,
                tokenizer=signals,
                examples=farthest_texts(ref_vectors, cur_vectors, current.texts),
                run_id=run.info.run_id,
                evidently_page=EVIDENTLY_PAGE if report_logged else None,
                redactions=current.redactions,
            )
        )
        drift_run_id = run.info.run_id

    retention = apply_retention(config, trigger_store, holder, cache_dir=cache_dir, report_dir=report_dir)
    retrain_result: dict[str, Any] | None = None
    retrain_error: str | None = None
    if decision.action == "retrain" and retrain is not None:
        try:
            with phase(f"drift flagged: retraining {name} (train, register, gate)"):
                # the drifted window travels with the trigger: the retrain's gate runs the shadow comparison on it
                shadow_traffic = current.as_traffic()
                retrain_result = retrain(
                    {
                        "model": name,
                        "version": version,
                        "drift_run_id": drift_run_id,
                        "window": current.source,
                        "shadow_traffic": shadow_traffic,
                    }
                )
        except Exception as exc:  # any failure of the retrain: the drift result still stands and is reported
            retrain_error = str(exc) if isinstance(exc, EmbedopsError) else f"{type(exc).__name__}: {exc}"
            trigger_store.finish(
                model=name,
                holder=holder,
                succeeded=False,
                policy=config.trigger,
                key=key,
                error=retrain_error,
                version=version,
            )
        else:
            trigger_store.finish(model=name, holder=holder, succeeded=True, policy=config.trigger)
    return DriftResult(
        model=name,
        version=version,
        score=scores.auc,
        threshold=config.trigger.retrain_threshold,
        p_value=scores.ks_p_value,
        ks_dimensions=scores.ks_dimensions,
        drifted=decision.drifted,
        window={
            "current": len(current.texts),
            "reference": len(reference.texts),
            "current_digest": current.digest,
            "reference_digest": reference.digest,
            "start": current.span[0],
            "end": current.span[1],
            "redactions": current.redactions,
            "reference_redactions": reference.redactions,
        },
        tokenizer=signals,
        trigger=decision,
        idempotency_key=key,
        run_id=drift_run_id,
        report_logged=report_logged,
        retrain=retrain_result,
        retrain_error=retrain_error,
        retention=retention,
    )


def apply_retention(
    config: DriftConfig, trigger_store: TriggerStore, holder: str, *, cache_dir: Path | None, report_dir: Path | None
) -> dict[str, Any]:
    """Every drift job enforces retention; a purge that fails is reported, and never costs the drift result."""
    from mlflow.exceptions import MlflowException

    days = config.retention_days
    try:
        with phase(f"retention: purging stored traffic data older than {days} days"):
            purged = purge_traffic(
                days=days,
                cache_dir=cache_dir,
                report_dir=report_dir,
                ledger=trigger_store.ledger,
                actor=holder,
                trigger="drift job",
                record_empty=False,
            )
    except (OSError, MlflowException, EmbedopsError) as exc:
        problem = f"{type(exc).__name__}: {exc}"[:500]
        say(f"retention purge failed (run `embedops traffic purge --older-than {days}d`): {problem}")
        return {"days": days, "removed": {}, "error": problem}
    return {"days": days, "removed": purged.removed, "error": None}
