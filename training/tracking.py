"""What a training run writes to MLflow besides the model: inputs, config, code version, the loss curve."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any

import yaml

from training.config import TrainConfig
from training.data import TrainingData


def code_commit() -> str | None:
    """The git commit of the embedops code that ran, if it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def log_inputs(cfg: TrainConfig, data: TrainingData, base_model: str) -> None:
    """Params (the resolved config), the config as YAML, and the data as an MLflow dataset input."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas  # mlflow.data.from_pandas is only set at runtime

    resolved = cfg.model_dump() | {"base_model": base_model}
    mlflow.log_params({k: ("" if v is None else v) for k, v in resolved.items()})
    mlflow.log_text(yaml.safe_dump(resolved, sort_keys=False), "config/train.yaml")
    mlflow.set_tags(
        {
            "train_data_digest": data.digest,
            "train_rows": str(len(data)),
            "train_dropped_empty": str(data.dropped_empty),
            "train_dropped_duplicates": str(data.dropped_duplicates),
        }
    )
    commit = code_commit()
    if commit:
        mlflow.set_tag("mlflow.source.git.commit", commit)
    with warnings.catch_warnings():
        # A local path matches MLflow's file source twice over; it picks the right one and says so.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        dataset = from_pandas(
            data.to_pandas(), source=data.source, name=Path(data.source).name, digest=data.digest[:32]
        )  # MLflow stores at most 36 characters
    mlflow.log_input(dataset, context="training")


def loss_logger(run_id: str) -> Any:
    """A trainer callback that sends loss and learning rate to MLflow at every logging step."""
    import mlflow
    from transformers import TrainerCallback

    class MlflowLossLogger(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            metrics = {k: float(logs[k]) for k in ("loss", "learning_rate", "grad_norm") if k in logs}
            if metrics:
                mlflow.log_metrics(metrics, step=state.global_step, run_id=run_id)

    return MlflowLossLogger()
