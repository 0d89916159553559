"""Bring an existing sentence-transformers folder (the base model, say) into the registry."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from evaluation.evaluator import evaluate
from evaluation.golden import load_golden_set
from evaluation.models import check_model_folder, is_mlflow_uri, load_sentence_transformer, resolve_model_folder
from evaluation.tracking import ensure_experiment, tracked_run
from registry import model_logging
from registry.names import validate_name

REGISTER_EXPERIMENT = "embedops-registry"


def register_folder(path: str | Path, name: str, *, golden: str | None = None, golden_split: str = "test",
                    base_model: str | None = None, artifact_root: str | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Log ``path`` as a model with its contract tags (and golden metrics), verify it, register it.

    ``path`` may also be a logged model (``runs:/RUN_ID/model``): how a release manager registers
    what a trainer without rights on the registered model trained with ``--no-register``.
    """
    validate_name(name)
    if not is_mlflow_uri(str(path)):
        return _register(check_model_folder(Path(path).expanduser()), name, golden=golden, golden_split=golden_split,
                         base_model=base_model, artifact_root=artifact_root, progress=progress, source={})
    source = {"source_model_uri": str(path)}
    if str(path).startswith("runs:/"):
        source["source_run_id"] = str(path).removeprefix("runs:/").split("/", 1)[0]
        base_model = base_model or _run_tag(source["source_run_id"], "base_model")
    with tempfile.TemporaryDirectory() as tmp:
        folder = resolve_model_folder(str(path), download_dir=Path(tmp))
        return _register(folder, name, golden=golden, golden_split=golden_split, base_model=base_model,
                         artifact_root=artifact_root, progress=progress, source=source)


def _run_tag(run_id: str, key: str) -> str | None:
    import mlflow

    return mlflow.get_run(run_id).data.tags.get(key)


def _register(folder: Path, name: str, *, golden: str | None, golden_split: str, base_model: str | None,
              artifact_root: str | None, progress: bool, source: dict[str, str]) -> dict[str, Any]:
    import mlflow

    golden_set = load_golden_set(golden, golden_split) if golden else None
    model = load_sentence_transformer(folder)
    metrics = evaluate(model, golden_set, progress=progress).metrics if golden_set else {}
    extra = source or {"source_folder": str(folder.resolve())}
    if golden_set:
        extra |= {"golden_digest": golden_set.digest} | {k: f"{v:.6f}" for k, v in metrics.items()}
    experiment_id = ensure_experiment(REGISTER_EXPERIMENT, artifact_root)
    with tracked_run(experiment_id=experiment_id, run_name=f"register-{name}") as run:
        mlflow.log_params({"source": source.get("source_model_uri", str(folder.resolve())), "name": name})
        if metrics:
            mlflow.log_metrics(metrics)
        model_uri, tags = model_logging.log_verified_model(model, base_model=base_model or folder.name,
                                                           extra_tags=extra)
        version = model_logging.register_version(model_uri, name, run.info.run_id, tags)
    return {"model": name, "version": version, "model_uri": f"models:/{name}/{version}", "run_id": run.info.run_id,
            "metrics": metrics, "golden_digest": golden_set.digest if golden_set else None, "tags": tags}
