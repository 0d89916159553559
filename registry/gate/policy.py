"""The promotion policy: what a candidate must show before it may replace production."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from embedops.core.config import build_config, read_yaml_mapping, resolve_relative_paths
from evaluation.golden import DEFAULT_SPLIT
from evaluation.metrics import METRIC_NAMES
from evaluation.precision import Precision


class ShadowPolicy(BaseModel):
    """Live queries answered by both sides before a promotion (``embedops shadow``). Report-only unless
    a threshold is set: overlap says what changes, not which is better; the golden set decides that."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    traffic: str = Field(description="live queries: a JSONL file or a folder of them")
    corpus: str | None = Field(None, description="the corpus searched (default: the first production serves)")
    sample: int = Field(2000, ge=10, le=1_000_000)
    min_rbo: float | None = Field(None, ge=0, le=1, description="mean rank-biased overlap must be at least this")
    max_top1_change: float | None = Field(
        None, ge=0, le=1, description="the share of queries whose top result changes may be at most this"
    )
    drift_config: str | None = Field(
        None, description="the drift config whose `redaction:` block the queries go through (default: mask all)"
    )


class GatePolicy(BaseModel):
    """Defaults are the documented policy; a YAML file may override any field (unknown keys are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary_metric: str = "ndcg_at_10"
    min_delta: float = Field(0.005, ge=0, le=1, description="the primary metric must improve by at least this")
    alpha: float | None = Field(
        0.05, gt=0, lt=1, description="significance level of the paired test; null skips the test (tiny sets)"
    )
    alternative: Literal["greater", "two-sided"] = "greater"
    n_resamples: int = Field(10_000, ge=100, le=1_000_000)
    guards: dict[str, float] = Field(
        default_factory=lambda: {"recall_at_10": 0.01, "mrr_at_10": 0.01},
        description="metric -> largest allowed drop (absolute)",
    )
    max_latency_increase: float | None = Field(
        0.25, ge=0, description="p99 single-text latency may grow by at most this fraction; null disables"
    )
    latency_calls: int = Field(200, ge=20, le=100_000)
    allow_reindex: bool = Field(False, description="accept a new dimension or tokenizer (the index must be rebuilt)")
    golden: str | None = Field(None, description="golden-set folder, if not given on the command line")
    golden_split: str = DEFAULT_SPLIT
    precision: Precision = "fp32"
    release_managers: list[str] = Field(
        default_factory=list, description="who may move production; empty: anyone (single-user default)"
    )
    shadow: ShadowPolicy | None = None

    @field_validator("primary_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRIC_NAMES:
            raise ValueError(f"'{value}' is not a metric evaluation produces ({', '.join(METRIC_NAMES)})")
        return value

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: dict[str, float]) -> dict[str, float]:
        for name, drop in value.items():
            if name not in METRIC_NAMES:
                raise ValueError(f"guard '{name}' is not a metric evaluation produces")
            if not 0 <= drop <= 1:
                raise ValueError(f"guard '{name}': allowed drop must be within [0, 1], got {drop}")
        return value

    @model_validator(mode="after")
    def _primary_is_not_a_guard(self) -> GatePolicy:
        if self.primary_metric in self.guards:
            raise ValueError(f"'{self.primary_metric}' is the primary metric; it cannot also be a guard")
        return self


def load_policy(path: str | Path | None = None, **overrides: object) -> GatePolicy:
    """The default policy, or ``path`` (YAML) on top of it; relative ``golden`` follows the file."""
    values: dict[str, Any] = {}
    if path is not None:
        values = read_yaml_mapping(Path(path))
        resolve_relative_paths(values, ("golden",), path)
        if isinstance(values.get("shadow"), dict):
            resolve_relative_paths(values["shadow"], ("traffic", "drift_config"), path)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_config(GatePolicy, values, source=str(path) if path else "defaults", what="gate policy")
