"""Bring an existing sentence-transformers folder (the base model, say) into the registry."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embedops.core.errors import ModelError
from embedops.core.names import validate_name
from embedops.core.runs import ensure_experiment, tracked_run
from evaluation.evaluator import evaluate
from evaluation.golden import DEFAULT_SPLIT, load_golden_set
from evaluation.models import (
    check_model_folder,
    check_safetensors,
    download_model,
    is_mlflow_uri,
    load_sentence_transformer,
)
from evaluation.models import strip_remote_code as strip_code
from registry import model_logging

REGISTER_EXPERIMENT = "embedops-registry"


@dataclass(frozen=True)
class Registered:
    """A new registered version; ``to_dict`` is ``register --json``."""

    model: str
    version: str
    model_uri: str
    run_id: str
    metrics: dict[str, float]  # golden-set metrics, empty without --golden
    golden_digest: str | None
    tags: dict[str, str]  # the version's contract tags

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register_folder(
    path: str | Path,
    name: str,
    *,
    golden: str | None = None,
    golden_split: str = DEFAULT_SPLIT,
    base_model: str | None = None,
    artifact_root: str | None = None,
    strip_remote_code: bool = False,
    progress: bool = True,
) -> Registered:
    """Log ``path`` as a model with its contract tags (and golden metrics), verify it, register it.

    ``path`` may also be a logged model (``runs:/RUN_ID/model``): how a release manager registers
    what a trainer without rights on the registered model trained with ``--no-register``.
    A folder that asks for code of its own is refused, or with ``strip_remote_code`` registered
    without it (what was dropped is the version's ``remote_code_stripped`` tag).
    """
    validate_name(name)
    source = {"source_model_uri": str(path)} if is_mlflow_uri(str(path)) else {}
    if str(path).startswith("runs:/"):
        source["source_run_id"] = str(path).removeprefix("runs:/").split("/", 1)[0]
        base_model = base_model or _run_tag(source["source_run_id"], "base_model")
    with tempfile.TemporaryDirectory() as tmp:
        root = download_model(str(path), Path(tmp) / "download") if source else Path(path).expanduser()
        if not root.is_dir():
            raise ModelError(f"model folder not found: {root}")
        dropped: list[str] = []
        if strip_remote_code:
            root, dropped = strip_code(root, Path(tmp) / "stripped")
        folder = check_model_folder(root)
        check_safetensors(folder)
        extra = source or {"source_folder": str(Path(path).expanduser().resolve())}
        if dropped:
            extra["remote_code_stripped"] = "; ".join(dropped)
        base_model = base_model or (str(path) if source else Path(path).expanduser().resolve().name)
        return _register(
            folder,
            name,
            golden=golden,
            golden_split=golden_split,
            base_model=base_model,
            artifact_root=artifact_root,
            progress=progress,
            extra=extra,
        )


def _run_tag(run_id: str, key: str) -> str | None:
    import mlflow

    return mlflow.get_run(run_id).data.tags.get(key)


def _register(
    folder: Path,
    name: str,
    *,
    golden: str | None,
    golden_split: str,
    base_model: str,
    artifact_root: str | None,
    progress: bool,
    extra: dict[str, str],
) -> Registered:
    import mlflow

    golden_set = load_golden_set(golden, golden_split) if golden else None
    model = load_sentence_transformer(folder)
    metrics = evaluate(model, golden_set, progress=progress).metrics if golden_set else {}
    if golden_set:
        extra |= {"golden_digest": golden_set.digest} | {k: f"{v:.6f}" for k, v in metrics.items()}
    experiment_id = ensure_experiment(REGISTER_EXPERIMENT, artifact_root)
    with tracked_run(experiment_id=experiment_id, run_name=f"register-{name}") as run:
        mlflow.log_params({"source": extra.get("source_model_uri", extra.get("source_folder")), "name": name})
        if metrics:
            mlflow.log_metrics(metrics)
        model_uri, tags = model_logging.log_verified_model(model, base_model=base_model, extra_tags=extra)
        version = model_logging.register_version(model_uri, name, run.info.run_id, tags)
    return Registered(
        model=name,
        version=version,
        model_uri=f"models:/{name}/{version}",
        run_id=run.info.run_id,
        metrics=metrics,
        golden_digest=golden_set.digest if golden_set else None,
        tags=tags,
    )
