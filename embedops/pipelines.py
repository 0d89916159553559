"""Pipelines that chain the packages: retrain = train -> register -> gate (-> promote, if policy says so)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from embedops.core.config import build_config, read_yaml_mapping, resolve_relative_paths
from embedops.core.errors import ConfigError
from embedops.core.names import validate_name
from evaluation.golden import DEFAULT_SPLIT

if TYPE_CHECKING:
    from monitoring.redaction import Redactor
    from monitoring.windows import Window
    from training.config import TrainConfig


class RetrainConfig(BaseModel):
    """What a retrain does; ``train`` holds training settings (see `embedops train`), minus the name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str
    train: dict[str, Any] = Field(..., description="training config: data, loss, epochs, ...")
    start_from: Literal["production", "base"] = "production"
    golden: str
    golden_split: str = DEFAULT_SPLIT
    policy: str | None = Field(None, description="gate policy YAML (default: the documented policy)")
    auto_promote: bool = Field(False, description="promote a candidate that passes the gate without a person")

    @field_validator("model_name")
    @classmethod
    def _safe(cls, value: str) -> str:
        return validate_name(value)


def load_retrain_config(path: str | Path) -> RetrainConfig:
    from training.config import PATH_FIELDS

    values = read_yaml_mapping(Path(path))
    resolve_relative_paths(values, ("golden", "policy"), path)
    train = values.get("train")
    if isinstance(train, dict):
        resolve_relative_paths(train, PATH_FIELDS, path)
    return build_config(RetrainConfig, values, source=str(path), what="retrain config")


@dataclass(frozen=True)
class RetrainResult:
    """A retrain's trained version and the gate's word on it; ``to_dict`` is ``retrain --json``."""

    model: str
    version: str
    training_run_id: str
    drift_run_id: str | None  # the drift run that triggered it; None for a manual retrain
    verdict: Literal["pass", "reject"]
    decision_run_id: str | None
    production: str | None  # production after the gate (moved only with auto_promote)
    candidate: str | None  # the version `candidate` points at after a passing gate-only run
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BreakerReset:
    """``retrain --reset-breaker NAME``: the model's breaker is closed again."""

    model: str
    breaker: str = "reset"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrain(
    cfg: RetrainConfig,
    ctx: Any,
    *,
    artifact_root: str | None,
    trigger: dict[str, Any] | None = None,
    progress: bool = True,
) -> RetrainResult:
    """Train a candidate on the configured data, register it, gate it against production.

    A rejected gate is an outcome, not a failure (the breaker does not count it). Every step leaves
    its trace: the training run is tagged with the drift run that caused it, and a ledger row with
    action ``retrain`` links drift run -> training run -> gate decision run.
    """
    import mlflow

    from registry.gate.policy import load_policy
    from registry.promotion import GateRejected, promote
    from registry.store import production_version
    from training.job import run_training

    production = production_version(cfg.model_name, " to retrain against")
    result = run_training(training_config(cfg, production), artifact_root=artifact_root, progress=progress)
    drift_run_id = (trigger or {}).get("drift_run_id")
    mlflow.MlflowClient().set_tag(result.run_id, "retrain_trigger_run_id", drift_run_id or "manual")

    policy = load_policy(cfg.policy)
    traffic = (trigger or {}).get("shadow_traffic")
    if traffic is not None:  # a drift-triggered retrain: its gate compares answers on the drifted window
        from dataclasses import replace

        from registry.gate.policy import ShadowPolicy

        if policy.shadow is None:
            policy = policy.model_copy(update={"shadow": ShadowPolicy(traffic=traffic.source)})
        ctx = replace(ctx, read_traffic=lambda shadow: traffic.sampled(shadow.sample))
    verdict: Literal["pass", "reject"]
    try:
        outcome = promote(
            ctx,
            cfg.model_name,
            str(result.version),
            policy=policy,
            golden=cfg.golden,
            golden_split=cfg.golden_split,
            gate_only=not cfg.auto_promote,
            # A candidate waits ready to serve: its index of each corpus production serves is built once
            # it passes, so a release manager's promote moves it without a build.
            build_index=True,
            reason=f"retrain after drift run {drift_run_id}" if drift_run_id else "manual retrain",
            progress=progress,
        ).to_dict()
        verdict = "pass"
    except GateRejected as exc:
        outcome, verdict = exc.payload, "reject"
    ctx.ledger.record(
        actor=ctx.actor,
        action="retrain",
        model=cfg.model_name,
        alias="candidate",
        from_version=production,
        to_version=str(result.version),
        outcome="success" if verdict == "pass" else "rejected",
        reason=f"drift run {drift_run_id or '-'} -> training run {result.run_id}",
        decision_run_id=outcome.get("decision_run_id"),
    )
    return RetrainResult(
        model=cfg.model_name,
        version=str(result.version),
        training_run_id=result.run_id,
        drift_run_id=drift_run_id,
        verdict=verdict,
        decision_run_id=outcome.get("decision_run_id"),
        production=outcome.get("production"),
        candidate=outcome.get("candidate"),
        metrics=result.metrics,
    )


def training_config(cfg: RetrainConfig, production: str) -> TrainConfig:
    """The training run a retrain starts: its ``train`` settings, the model's name and golden set,
    from the production version's weights unless ``start_from: base``."""
    from training.config import TrainConfig, load_config

    overrides = {k: v for k, v in cfg.train.items() if k in TrainConfig.model_fields}
    unknown = sorted(set(cfg.train) - set(overrides))
    if unknown:
        raise ConfigError(f"retrain config: unknown training settings {unknown}")
    overrides |= {"model_name": cfg.model_name, "golden": cfg.golden, "golden_split": cfg.golden_split}
    if cfg.start_from == "production":
        overrides["base_model"] = f"models:/{cfg.model_name}/{production}"
    return load_config(None, **overrides)


def check_retrain_inputs(cfg: RetrainConfig) -> None:
    """Read what a retrain will read (training data, golden set, policy) and fail now, in seconds,
    rather than after a drift job has spent minutes embedding traffic."""
    from evaluation.golden import load_golden_set
    from registry.gate.policy import load_policy
    from registry.store import production_version
    from training.data import load_training_data

    train = training_config(cfg, production_version(cfg.model_name, " to retrain against"))
    load_training_data(train.data, split=train.data_split, min_rows=train.batch_size)
    load_golden_set(cfg.golden, cfg.golden_split)
    load_policy(cfg.policy)


def drift_retrain(
    config_path: str | Path, ctx: Any, *, artifact_root: str | None, may_register: Callable[[str], None]
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The retrain a drifted window may start, with its inputs checked before any traffic is embedded.

    A config that cannot train does not stop the drift job: the window is still scored and recorded,
    and if the trigger calls for the retrain, this one fails at once with the reason, which the drift
    result reports (``retrain_error``), the breaker counts and the ledger keeps. The window stays
    open, so the run after the fix retrains it.
    """
    from embedops.core.errors import EmbedopsError

    try:
        cfg = load_retrain_config(config_path)
        check_retrain_inputs(cfg)
        may_register(cfg.model_name)
    except EmbedopsError as exc:
        problem = f"retrain config {config_path}: {exc}"

        def refuse(trigger: dict[str, Any]) -> dict[str, Any]:
            raise ConfigError(problem)

        return refuse
    return lambda trigger: retrain(cfg, ctx, artifact_root=artifact_root, trigger=trigger).to_dict()


def reference_window(
    name: str, reference: str | Path | None, *, size: int, seed: int, redactor: Redactor | None = None
) -> Window:
    """The drift reference: the given traffic file or folder, else production's own training queries."""
    from monitoring.windows import read_window

    if reference:  # an empty string counts as not given: MLproject parameters cannot be left out
        return read_window(reference, size=size, seed=seed, redactor=redactor)
    return default_reference(name, size=size, seed=seed, redactor=redactor)


def default_reference(name: str, *, size: int, seed: int, redactor: Redactor | None = None) -> Any:
    """The production version's own training queries (its anchors), sampled with a fixed seed.

    What the model was tuned on is what "normal" traffic looked like when it was promoted; the
    sample is a pure function of the version's recorded data and the seed, so it stays fixed.
    """
    import random

    from monitoring.redaction import Redactor
    from monitoring.windows import Window, text_digest
    from registry.store import client, get_version, production_version
    from training.data import load_training_data

    version = production_version(name)
    info = get_version(name, version)
    params = client().get_run(info.run_id).data.params if info.run_id else {}
    if "data" not in params:
        raise ConfigError(
            f"{name} v{version} has no training data on record (registered, not trained): pass --reference"
        )
    data = load_training_data(params["data"], split=params.get("data_split", "train"))
    anchors = list(dict.fromkeys(row[0] for row in data.rows))
    if len(anchors) > size:
        anchors = random.Random(seed).sample(anchors, size)
    # Redacted like the traffic it is compared with: a mask only one side had would itself read as drift.
    anchors, found = (redactor or Redactor()).redact_all(anchors)
    return Window(
        texts=anchors,
        source=f"{params['data']} (training anchors of v{version})",
        digest=text_digest(anchors),
        total=len(data),
        dropped_empty=0,
        redactions=found.to_dict(),
        is_traffic=False,
    )


def traffic_reader(seed: int = 0) -> Callable[[Any], Any]:
    """Reads the live queries a gate policy's ``shadow:`` block names (for ``Context.read_traffic``)."""

    def read(shadow: Any) -> Any:
        from monitoring.config import load_drift_config
        from monitoring.redaction import Redactor
        from monitoring.windows import read_window
        from registry.shadow import MIN_QUERIES

        redactor = Redactor(load_drift_config(shadow.drift_config).redaction)
        window = read_window(
            shadow.traffic,
            size=shadow.sample,
            seed=seed,
            min_texts=MIN_QUERIES,
            purpose="a shadow comparison",
            redactor=redactor,
        )
        return window.as_traffic()

    return read
