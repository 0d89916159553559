"""A drift job: embed reference and current traffic with the production model, score, decide, log.

The retrain itself is not imported here (monitoring never imports training): the caller hands in
a ``retrain`` callable, and the trigger decides whether it runs.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embedops.core.runs import ensure_experiment
from evaluation.cache import CacheKey, EmbeddingCache
from evaluation.evaluator import encode
from evaluation.precision import autocast, effective_precision
from monitoring.config import DriftConfig
from monitoring.detect import drift_scores
from monitoring.state import TriggerStore
from monitoring.tokens import token_signals
from monitoring.windows import Window
from registry import store
from registry.store import PRODUCTION, RegistryError
from registry.verified import load_version

MONITORING_EXPERIMENT = "monitoring"
RetrainFn = Callable[[dict[str, Any]], dict[str, Any]]


def embed_window(
    loaded: Any, window: Window, *, precision: str, cache: EmbeddingCache | None, progress: bool
) -> np.ndarray:
    """Vectors for a window, cached by (model weights, window digest, max_seq_length, precision)."""
    key = CacheKey(loaded.digest, window.digest, int(loaded.model.max_seq_length), precision)
    cached = cache.load(key, len(window.texts)) if cache else None
    if cached is not None:
        return cached
    with autocast(precision):  # type: ignore[arg-type]
        vectors = encode(loaded.model, window.texts, batch_size=64, progress=progress, what="window texts")
    if cache:
        cache.save(key, vectors)
    return vectors


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
) -> dict[str, Any]:
    import mlflow

    version = store.alias_version(name, PRODUCTION)
    if version is None:
        raise RegistryError(f"{name} has nothing in production: drift is measured with the production model")
    loaded = load_version(store.get_version(name, version))
    precision = effective_precision(config.precision)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    ref_vectors = embed_window(loaded, reference, precision=precision, cache=cache, progress=progress)
    cur_vectors = embed_window(loaded, current, precision=precision, cache=cache, progress=progress)
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
        )
        mlflow.log_metrics(
            {
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
        )
        report_logged = False
        if force_report or (decision.drifted and config.report == "on_drift") or config.report == "always":
            from monitoring.report import write_evidently_report

            with tempfile.TemporaryDirectory() as tmp:
                path = write_evidently_report(
                    ref_vectors,
                    cur_vectors,
                    Path(tmp) / "drift_report.html",
                    threshold=config.trigger.retrain_threshold,
                )
                mlflow.log_artifact(str(path), artifact_path="drift")
                report_logged = True
        drift_run_id = run.info.run_id

    retrain_result: dict[str, Any] | None = None
    retrain_error: str | None = None
    if decision.action == "retrain" and retrain is not None:
        try:
            retrain_result = retrain(
                {"model": name, "version": version, "drift_run_id": drift_run_id, "window": current.source}
            )
        except Exception as exc:  # counted by the breaker, then re-raised for the caller's exit code
            retrain_error = f"{type(exc).__name__}: {exc}"
            trigger_store.finish(model=name, holder=holder, succeeded=False, policy=config.trigger)
            raise
        trigger_store.finish(model=name, holder=holder, succeeded=True, policy=config.trigger)
    return {
        "model": name,
        "version": version,
        "score": scores.auc,
        "threshold": config.trigger.retrain_threshold,
        "p_value": scores.ks_p_value,
        "ks_dimensions": scores.ks_dimensions,
        "drifted": decision.drifted,
        "window": {
            "current": len(current.texts),
            "reference": len(reference.texts),
            "current_digest": current.digest,
            "reference_digest": reference.digest,
        },
        "tokenizer": signals,
        "trigger": decision.to_dict(),
        "idempotency_key": key,
        "run_id": drift_run_id,
        "report_logged": report_logged,
        "retrain": retrain_result,
        "retrain_error": retrain_error,
    }
