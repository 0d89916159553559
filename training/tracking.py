"""Everything a training run writes to MLflow: the one edge of training that imports mlflow."""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from evaluation.errors import ModelError
from evaluation.evaluator import encode
from evaluation.models import load_sentence_transformer
from registry.contract import save_tokenizer, tokenizer_sha256
from training.config import TrainConfig
from training.data import TrainingData

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo
    from sentence_transformers import SentenceTransformer

PROBE_TEXTS = ["How do I reset my password?", "Quarterly revenue grew by four percent.", "ok"]


def code_commit() -> str | None:
    """The git commit of the embedops code that ran, if it runs from a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def log_inputs(cfg: TrainConfig, data: TrainingData, base_model: str) -> None:
    """Params (the resolved config), the config as YAML, and the data as an MLflow dataset input."""
    import mlflow

    resolved = cfg.model_dump() | {"base_model": base_model}
    mlflow.log_params({k: ("" if v is None else v) for k, v in resolved.items()})
    mlflow.log_text(yaml.safe_dump(resolved, sort_keys=False), "config/train.yaml")
    mlflow.set_tags({"train_data_digest": data.digest, "train_rows": str(len(data)),
                     "train_dropped_empty": str(data.dropped_empty),
                     "train_dropped_duplicates": str(data.dropped_duplicates)})
    commit = code_commit()
    if commit:
        mlflow.set_tag("mlflow.source.git.commit", commit)
    with warnings.catch_warnings():
        # A local path matches MLflow's file source twice over; it picks the right one and says so.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        dataset = mlflow.data.from_pandas(data.to_pandas(), source=data.source, name=Path(data.source).name,
                                          digest=data.digest[:32])  # MLflow stores at most 36 characters
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


def log_tokenizer(model: SentenceTransformer) -> str:
    """Log the tokenizer files under ``tokenizer/`` and return their sha256."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        files = save_tokenizer(model, Path(tmp))
        for f in files:
            mlflow.log_artifact(str(f), artifact_path="tokenizer")
        return tokenizer_sha256(files)


def pip_requirements() -> list[str]:
    """Pinned explicitly: MLflow's own guess takes seconds and pins a '+cpu' torch pip cannot find."""
    import mlflow
    import sentence_transformers
    import torch
    import transformers

    return [f"mlflow=={mlflow.__version__}", f"torch=={torch.__version__.split('+')[0]}",
            f"transformers=={transformers.__version__}",
            f"sentence-transformers=={sentence_transformers.__version__}"]


def log_model(model: SentenceTransformer) -> ModelInfo:
    import mlflow
    from mlflow.models import infer_signature

    dim = model.get_embedding_dimension()
    signature = infer_signature(["a text"], np.zeros((1, dim), dtype=np.float32))
    return mlflow.sentence_transformers.log_model(model, name="model", signature=signature,
                                                  pip_requirements=pip_requirements())


def verify_logged_model(model_uri: str, dim: int) -> None:
    """Load the logged model back and check it embeds: a version is registered only after this."""
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_sentence_transformer(model_uri, device="cpu", download_dir=Path(tmp))
        vectors = encode(loaded, PROBE_TEXTS, batch_size=len(PROBE_TEXTS), progress=False, what="probe texts")
    if vectors.shape != (len(PROBE_TEXTS), dim):
        raise ModelError(f"the logged model returns vectors of shape {vectors.shape}, expected "
                         f"({len(PROBE_TEXTS)}, {dim}): not registering it")


def register(model_uri: str, name: str, run_id: str, tags: dict[str, str]) -> str:
    """Register with every contract tag set at creation, so no version exists without them."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags={**tags, "run_id": run_id})
    return str(version.version)
