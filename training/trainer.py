"""One call into sentence-transformers' trainer, with embedops' defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embedops.core.progress import bars, phase
from training.config import TrainConfig
from training.losses import uses_in_batch_negatives

if TYPE_CHECKING:
    import datasets
    import torch
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class FitStats:
    steps: int
    seconds: float
    pairs_per_second: float
    final_loss: float
    world_size: int = 1  # processes that trained data-parallel (torchrun)


def planned_steps(n_rows: int, cfg: TrainConfig) -> int:
    if cfg.max_steps:
        return cfg.max_steps
    return max(1, math.ceil(math.ceil(n_rows / cfg.batch_size) * cfg.epochs))


def training_arguments(cfg: TrainConfig, n_rows: int, output_dir: str, *, progress: bool) -> Any:
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    return SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=int(planned_steps(n_rows, cfg) * cfg.warmup_ratio),
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cfg.precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        batch_sampler=(BatchSamplers.NO_DUPLICATES if uses_in_batch_negatives(cfg) else BatchSamplers.BATCH_SAMPLER),
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="no",
        report_to="none",  # embedops logs to MLflow itself (one run, our metric names)
        disable_tqdm=not (progress and bars()),  # a log file gets the phase lines and MLflow's loss curve
    )


def fit(
    model: SentenceTransformer,
    dataset: datasets.Dataset,
    loss: torch.nn.Module,
    cfg: TrainConfig,
    *,
    output_dir: str,
    callbacks: list[Any] | None = None,
    progress: bool = True,
) -> FitStats:
    from sentence_transformers import SentenceTransformerTrainer

    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_arguments(cfg, len(dataset), output_dir, progress=progress),
        train_dataset=dataset,
        loss=loss,
        callbacks=callbacks or [],
    )
    if trainer.args.disable_tqdm:  # without bars the trainer prints each log dict; MLflow has them already
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    steps = planned_steps(len(dataset), cfg)
    with phase(f"training: {steps} steps over {len(dataset)} rows", count=steps, unit="steps"):
        output = trainer.train()
    seconds = float(output.metrics.get("train_runtime", 0.0))
    world = int(trainer.args.world_size)
    return FitStats(
        steps=int(output.global_step),
        seconds=seconds,
        pairs_per_second=output.global_step * cfg.batch_size * world / seconds if seconds else 0.0,
        final_loss=float(output.training_loss),
        world_size=world,
    )
