"""Pipelines that chain the packages: retrain = train -> register -> gate (-> promote, if policy says so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from embedops.core.config import build_config, read_yaml_mapping
from embedops.core.names import validate_name
from evaluation.golden import DEFAULT_SPLIT


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
    values = read_yaml_mapping(Path(path))
    base = Path(path).resolve().parent
    for key in ("golden", "policy"):
        if isinstance(values.get(key), str) and not Path(values[key]).is_absolute():
            values[key] = str((base / values[key]).resolve())
    train = values.get("train")
    if isinstance(train, dict):
        for key in ("data", "golden", "base_model"):
            value = train.get(key)
            if isinstance(value, str) and ":/" not in value and not Path(value).is_absolute():
                train[key] = str((base / value).resolve())
    return build_config(RetrainConfig, values, source=str(path), what="retrain config")


def retrain(
    cfg: RetrainConfig,
    ctx: Any,
    *,
    artifact_root: str | None,
    trigger: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a candidate on the configured data, register it, gate it against production.

    A rejected gate is an outcome, not a failure (the breaker does not count it). Every step leaves
    its trace: the training run is tagged with the drift run that caused it, and a ledger row with
    action ``retrain`` links drift run -> training run -> gate decision run.
    """
    import mlflow

    from registry.gate.policy import load_policy
    from registry.promotion import GateRejected, promote
    from registry.store import PRODUCTION, RegistryError, alias_version
    from training.config import TrainConfig, load_config
    from training.job import run_training

    production = alias_version(cfg.model_name, PRODUCTION)
    if production is None:
        raise RegistryError(f"{cfg.model_name} has nothing in production to retrain against")
    overrides = {k: v for k, v in cfg.train.items() if k in TrainConfig.model_fields}
    unknown = sorted(set(cfg.train) - set(overrides))
    if unknown:
        from embedops.core.errors import ConfigError

        raise ConfigError(f"retrain config: unknown training settings {unknown}")
    overrides |= {"model_name": cfg.model_name, "golden": cfg.golden, "golden_split": cfg.golden_split}
    if cfg.start_from == "production":
        overrides["base_model"] = f"models:/{cfg.model_name}/{production}"
    result = run_training(load_config(None, **overrides), artifact_root=artifact_root, progress=progress)
    drift_run_id = (trigger or {}).get("drift_run_id")
    mlflow.MlflowClient().set_tag(result.run_id, "retrain_trigger_run_id", drift_run_id or "manual")

    policy = load_policy(cfg.policy)
    try:
        outcome = promote(
            ctx,
            cfg.model_name,
            str(result.version),
            policy=policy,
            golden=cfg.golden,
            golden_split=cfg.golden_split,
            gate_only=not cfg.auto_promote,
            reason=f"retrain after drift run {drift_run_id}" if drift_run_id else "manual retrain",
            progress=progress,
        )
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
    return {
        "model": cfg.model_name,
        "version": result.version,
        "training_run_id": result.run_id,
        "drift_run_id": drift_run_id,
        "verdict": verdict,
        "decision_run_id": outcome.get("decision_run_id"),
        "production": outcome.get("production"),
        "candidate": outcome.get("candidate"),
        "metrics": result.metrics,
    }


def default_reference(name: str, *, size: int, seed: int) -> Any:
    """The production version's own training queries (its anchors), sampled with a fixed seed.

    What the model was tuned on is what "normal" traffic looked like when it was promoted; the
    sample is a pure function of the version's recorded data and the seed, so it stays fixed.
    """
    import random

    from embedops.core.errors import ConfigError
    from monitoring.windows import Window, text_digest
    from registry.store import PRODUCTION, RegistryError, alias_version, client, get_version
    from training.data import load_training_data

    version = alias_version(name, PRODUCTION)
    if version is None:
        raise RegistryError(f"{name} has nothing in production")
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
    return Window(
        texts=anchors,
        source=f"{params['data']} (training anchors of v{version})",
        digest=text_digest(anchors),
        total=len(data),
        dropped_empty=0,
    )
