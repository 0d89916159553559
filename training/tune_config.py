"""What a tuning study searches: a base training config, a search space, the objective, sampler, pruner.

Validated completely before any training starts: an empty or inverted range, an unknown
parameter, a categorical without choices or an objective that evaluation does not produce is a
ConfigError naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from embedops.core.config import build_config, read_yaml_mapping, resolve_relative_paths
from embedops.core.errors import ConfigError
from embedops.core.names import validate_name
from evaluation.golden import DEFAULT_SPLIT
from evaluation.metrics import METRIC_NAMES
from training.config import MAX_EPOCHS, PATH_FIELDS, SEED_RANGE, TrainConfig

# Training fields a study may vary; the rest (data, names, paths) are fixed by the base config.
TUNABLE = (
    "learning_rate",
    "batch_size",
    "epochs",
    "max_steps",
    "warmup_ratio",
    "weight_decay",
    "scale",
    "margin",
    "loss",
    "hard_negatives",
    "num_negatives",
    "negatives_margin",
    "mini_batch_size",
    "distance",
)


class ParamSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical parameter takes 'choices', not 'low'/'high'")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} parameter takes 'low' and 'high', not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs both 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"empty or inverted range: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("a log-uniform range must start above 0")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int parameter needs whole-number bounds")
        return self


class Objective(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = "ndcg_at_10"
    direction: Literal["maximize", "minimize"] = "maximize"

    @model_validator(mode="after")
    def _known(self) -> Objective:
        if self.metric not in METRIC_NAMES:
            raise ValueError(f"evaluation does not produce '{self.metric}'; choose one of {', '.join(METRIC_NAMES)}")
        return self


class SamplerSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["tpe", "random", "grid"] = "tpe"
    seed: int = Field(42, ge=0, lt=SEED_RANGE, description="Optuna's samplers take unsigned 32-bit seeds")
    n_startup_trials: int = Field(3, ge=0, description="tpe: random trials before the model-based ones")


class PrunerSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["median", "threshold", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0, description="median: trials that are never pruned")
    n_warmup_steps: int = Field(0, ge=0, description="median: steps before pruning is considered")
    lower: float | None = Field(None, description="threshold: prune below this intermediate value")
    upper: float | None = Field(None, description="threshold: prune above this intermediate value")

    @model_validator(mode="after")
    def _bounds(self) -> PrunerSpec:
        if self.type == "threshold" and self.lower is None and self.upper is None:
            raise ValueError("a threshold pruner needs 'lower' or 'upper'")
        return self


# The levers that matter on small supervised sets (issue 20): more than one epoch, mined hard negatives
# with their count and false-negative margin, and a guided loss; then the usual optimizer settings.
DEFAULT_SPACE = {
    "epochs": ParamSpec(type="int", low=1, high=4),
    "hard_negatives": ParamSpec(type="categorical", choices=[True, False]),
    "num_negatives": ParamSpec(type="int", low=1, high=3),
    "negatives_margin": ParamSpec(type="float", low=0.0, high=0.1),
    "loss": ParamSpec(type="categorical", choices=["contrastive", "gist"]),
    "learning_rate": ParamSpec(type="float", low=1e-5, high=1e-4, log=True),
    "batch_size": ParamSpec(type="categorical", choices=[16, 32, 64]),
    "scale": ParamSpec(type="float", low=10.0, high=40.0),
    "warmup_ratio": ParamSpec(type="float", low=0.0, high=0.2),
}
# Settings that only mean something when a trial mines hard negatives: suggested only then, so the
# sampler does not learn from values that changed nothing.
MINING_PARAMS = ("num_negatives", "negatives_margin")
# Documents (positives plus mined negatives, each up to the model's 256 tokens) one step may encode.
# Measured on all-MiniLM-L6-v2: batch 64 with 3 negatives (256 documents) was killed by the kernel
# at 24 GB on a 23 GB machine, taking the whole study with it. Activations grow with documents, so
# 128 should need about half of that (an estimate from that one measurement, not a second one).
MAX_DOCUMENTS_PER_STEP = 128


class TuneConfig(BaseModel):
    """A study: ``train`` holds `embedops train` settings; ``search_space`` varies some of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train: dict[str, Any]
    search_space: dict[str, ParamSpec] = Field(default_factory=lambda: dict(DEFAULT_SPACE))
    objective: Objective = Field(default_factory=Objective)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    report_every_steps: int | None = Field(
        None, gt=0, description="report the objective to the pruner every N steps (default: every epoch)"
    )
    enqueue: list[dict[str, Any]] = Field(
        default_factory=list,
        description="trials the study runs first, before the sampler's own, unless it already has them: "
        "e.g. a recipe you already trust",
    )
    max_documents_per_step: int | None = Field(
        MAX_DOCUMENTS_PER_STEP,
        gt=0,
        description="memory cap: a trial's num_negatives range shrinks so that batch_size x (1 + num_negatives) "
        "stays within it (never below the range's low); null: no cap",
    )
    study: str | None = Field(None, description="study name (default: <model name>-tune)")
    n_trials: int = Field(6, ge=1, description="trials this process runs (workers on one study add up)")
    timeout: float | None = Field(None, gt=0, description="stop starting trials after this many seconds")
    storage: str | None = Field(None, description="Optuna RDB URL (default: sqlite in EMBEDOPS_HOME)")

    @model_validator(mode="after")
    def _space(self) -> TuneConfig:
        unknown = sorted(set(self.search_space) - set(TUNABLE))
        if unknown:
            raise ValueError(f"cannot tune {unknown}: tunable settings are {', '.join(TUNABLE)}")
        if self.sampler.type == "grid" and any(p.type != "categorical" for p in self.search_space.values()):
            raise ValueError("the grid sampler needs every parameter categorical (list the values to try)")
        for n, params in enumerate(self.enqueue):
            outside = sorted(set(params) - set(self.search_space))
            if outside:
                raise ValueError(f"enqueue[{n}] sets {outside}, which the search space does not vary")
        epochs = self.search_space.get("epochs")
        if epochs and self.train.get("max_steps") is None and "max_steps" not in self.search_space:
            # Checked here, not when a trial builds its config: a study must fail before its first trial.
            top = (
                epochs.high
                if epochs.type != "categorical"
                else max((c for c in epochs.choices or [] if isinstance(c, int | float)), default=0)
            )
            if top is not None and top > MAX_EPOCHS:
                raise ValueError(
                    f"search_space.epochs reaches {top:g}, more than {MAX_EPOCHS}: set train.max_steps "
                    "(--max-steps) for longer trials"
                )
        return self

    def base(self) -> TrainConfig:
        """The training config every trial starts from (validated once, before any trial)."""
        return build_config(TrainConfig, dict(self.train), source="tune config 'train'", what="training config")

    def study_name(self) -> str:
        return validate_name(self.study or f"{self.base().model_name}-tune", "study name")


def load_tune_config(path: str | Path | None, train_overrides: dict[str, Any], **overrides: Any) -> TuneConfig:
    """Read ``path`` (YAML; relative paths follow the file), apply flag overrides, validate everything."""
    values: dict[str, Any] = read_yaml_mapping(Path(path)) if path else {}
    train = values.get("train", {})
    if not isinstance(train, dict):
        raise ConfigError(f"{path}: 'train' must be a mapping of training settings")
    if path:
        resolve_relative_paths(train, PATH_FIELDS, path)
    train.update({k: v for k, v in train_overrides.items() if v is not None})
    values["train"] = train
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = build_config(TuneConfig, values, source=str(path) if path else "flags", what="tune config")
    base = cfg.base()
    if not base.golden:
        raise ConfigError("tuning needs an objective: set train.golden (a BEIR folder) and train.golden_split")
    if base.golden_split == DEFAULT_SPLIT:
        raise ConfigError(
            f"the objective's golden split is '{DEFAULT_SPLIT}', the gate's split: tuning on it "
            "would leak (the gate would judge a model chosen to score well there). Use a dev split "
            "carved from the training queries (train.golden_split: dev)"
        )
    cfg.study_name()
    return cfg
