"""The drift job's settings: window sizes and the retrain trigger's policy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from embedops.core.config import build_config, read_yaml_mapping
from evaluation.precision import Precision
from monitoring.redaction import RedactionConfig
from monitoring.trigger import TriggerPolicy
from monitoring.windows import MIN_WINDOW_TEXTS


class DriftConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # A smaller sample could never make a window a drift score can be computed on.
    current_size: int = Field(2000, ge=MIN_WINDOW_TEXTS, description="texts sampled from the current window")
    reference_size: int = Field(5000, ge=MIN_WINDOW_TEXTS, description="texts sampled from the reference")
    seed: int = 0
    precision: Precision = "fp32"
    pca_components: int | None = Field(64, ge=2, description="principal components the checks run on; null: all")
    report: Literal["never", "on_drift", "always"] = "on_drift"
    trigger: TriggerPolicy = Field(default_factory=TriggerPolicy)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    # Traffic vectors, sampled texts and reports older than this are purged by every drift job.
    retention_days: int = Field(30, ge=1, le=3650, description="days stored traffic data is kept")

    def digest(self) -> str:
        """Part of the idempotency key: the same window under another config is another decision."""
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()


def load_drift_config(path: str | Path | None = None) -> DriftConfig:
    values = read_yaml_mapping(Path(path)) if path else {}
    return build_config(DriftConfig, values, source=str(path) if path else "defaults", what="drift config")
