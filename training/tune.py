"""Optuna studies over fine-tuning settings, every trial a nested MLflow run under the study's run.

Optuna's RDB storage holds the study, so several `embedops tune` processes on one study and
storage share the work, and a study resumes where it stopped: finished trials stay, and a trial
whose worker died (no heartbeat) is failed and retried once with the same parameters.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedops.core.errors import ConfigError, EmbedopsError
from embedops.core.runs import ensure_experiment
from training.config import TrainConfig
from training.tune_config import MINING_PARAMS, ParamSpec, TuneConfig

if TYPE_CHECKING:
    import optuna

PARENT_ATTR = "mlflow_parent_run_id"


@dataclass(frozen=True)
class StudyResult:
    """What one worker's share of a study ends with; ``to_dict`` is ``tune --json``."""

    study: str
    parent_run_id: str
    trials: dict[str, int]  # trial state -> count, over the whole study (every worker's trials)
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    best_run_id: str | None
    version: str | None  # registered as candidate, or None with --no-register
    seconds: float
    cpu_seconds: float = 0.0  # this worker's CPU time (every thread, and child processes), not the wall time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_storage_url(home: Path) -> str:
    """One study database per home, beside the ledger, unless the config or --storage names one."""
    return f"sqlite:///{home / 'optuna.db'}"


def suggest(
    trial: optuna.Trial, space: dict[str, ParamSpec], base: TrainConfig, max_documents: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    # hard_negatives first: the mining settings are suggested only for trials that mine; batch_size
    # next: it bounds how many negatives fit in memory.
    for name in sorted(space, key=lambda n: (n != "hard_negatives", n != "batch_size")):
        spec = space[name]
        if name in MINING_PARAMS and not params.get("hard_negatives", base.hard_negatives):
            continue
        # ParamSpec's validator: a categorical parameter has choices, an int or float one both bounds.
        if spec.type == "categorical":
            assert spec.choices is not None
            params[name] = trial.suggest_categorical(name, spec.choices)
            continue
        assert spec.low is not None and spec.high is not None
        if spec.type == "int":
            low, high = int(spec.low), int(spec.high)
            if name == "num_negatives" and max_documents:
                # Optuna lets an int parameter's range differ between trials (define-by-run).
                fits = max_documents // params.get("batch_size", base.batch_size) - 1
                high = max(low, min(high, fits))
            params[name] = trial.suggest_int(name, low, high, step=int(spec.step or 1), log=spec.log)
        else:
            params[name] = trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)
    return params


def open_storage(url: str) -> Any:
    """Optuna's RDB storage with heartbeats, so a killed worker's trial is failed and retried."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8; we rely on them
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=30,
                grace_period=120,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except Exception as exc:  # sqlalchemy raises many types for a bad URL or a server that is down
        raise ConfigError(f"cannot open the Optuna storage {url}: {type(exc).__name__}: {exc}"[:400]) from None


def build_sampler(cfg: TuneConfig) -> Any:
    import optuna

    spec = cfg.sampler
    if spec.type == "grid":
        return optuna.samplers.GridSampler(
            {k: list(v.choices or []) for k, v in cfg.search_space.items()}, seed=spec.seed
        )
    if spec.type == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=spec.n_startup_trials)


def build_pruner(cfg: TuneConfig) -> Any:
    import optuna

    spec = cfg.pruner
    if spec.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps)
    if spec.type == "threshold":
        return optuna.pruners.ThresholdPruner(lower=spec.lower, upper=spec.upper)
    return optuna.pruners.NopPruner()


def pruning_callback(trial: optuna.Trial, golden: Any, metric: str, every_steps: int | None, run_id: str) -> Any:
    """A trainer callback that scores the dev set during training, logs it to the trial's run as
    ``dev_<metric>`` per step, and stops a trial Optuna prunes."""
    import mlflow
    import optuna
    from transformers import TrainerCallback

    from evaluation.evaluator import evaluate

    class ReportToOptuna(TrainerCallback):
        def _report(self, state: Any, model: Any, step: int) -> None:
            value = evaluate(model, golden, progress=False).metrics[metric]
            mlflow.MlflowClient().log_metric(run_id, f"dev_{metric}", value, step=state.global_step)
            trial.report(value, step=step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"{metric} {value:.4f} at step {step}")

        def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> None:
            # The last epoch is scored by the job itself: that value is the trial's result. The pruner
            # compares trials at the same epoch: their batch sizes, and so their step counts, differ.
            if every_steps is None and state.global_step < state.max_steps:
                self._report(state, model, step=round(state.epoch))

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> None:
            if every_steps and state.global_step % every_steps == 0 and state.global_step < state.max_steps:
                self._report(state, model, step=state.global_step)

    return ReportToOptuna()


def run_study(
    cfg: TuneConfig,
    *,
    home: Path,
    artifact_root: str | None,
    register: bool,
    ledger: Any,
    actor: str = "embedops-tune",
    progress: bool = False,
    notify: Callable[[str], None] = print,
    negatives_cache: Path | None = None,
) -> StudyResult:
    """Run ``cfg.n_trials`` trials of the study in this process; register the study's best model.

    The study lives in ``cfg.storage``, else in ``optuna.db`` under ``home``.
    """
    import mlflow
    import optuna

    from evaluation.golden import load_golden_set
    from training.data import load_training_data
    from training.job import run_training

    base = cfg.base()
    assert base.golden is not None  # load_tune_config refuses a study without train.golden
    golden = load_golden_set(base.golden, base.golden_split)
    load_training_data(base.data, split=base.data_split, min_rows=base.batch_size)  # bad data: fail before trial 0
    name = cfg.study_name()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_url = cfg.storage or default_storage_url(home)
    home.mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient()
    experiment_id = ensure_experiment(base.experiment, artifact_root)
    # Workers starting together on a new storage would both create Optuna's schema (SQLite says
    # "table already exists" to the slower one), and on a new study each would create "the" parent
    # run: the ledger's lock, shared by every worker of one home or one PostgreSQL, serializes both.
    with ledger.locked(f"study:{name}"):
        study = optuna.create_study(
            storage=open_storage(storage_url),
            study_name=name,
            load_if_exists=True,
            direction=cfg.objective.direction,
            sampler=build_sampler(cfg),
            pruner=build_pruner(cfg),
        )
        # Not Optuna's skip_if_exists: that counts a FAILED trial (a Ctrl-C, a crash) as done, and such a
        # recipe should run again. A waiting trial's parameters are its fixed ones.
        tried = [
            t.system_attrs.get("fixed_params", {}) if t.state.name == "WAITING" else t.params
            for t in study.get_trials(deepcopy=False)
            if t.state.name != "FAIL"
        ]
        for params in cfg.enqueue:
            if not any(params.items() <= seen.items() for seen in tried):
                study.enqueue_trial(params)
        parent = study_parent_run(study, client, experiment_id, cfg)
    metric = cfg.objective.metric

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, cfg.search_space, base, cfg.max_documents_per_step)
        run = client.create_run(
            experiment_id,
            run_name=f"{name}-trial-{trial.number}",
            tags={
                "mlflow.parentRunId": parent,
                "optuna.study": name,
                "optuna.trial_number": str(trial.number),
                "embedops.job": "tune-trial",
            },
        )
        trial.set_user_attr("mlflow_run_id", run.info.run_id)
        try:
            trial_cfg = TrainConfig.model_validate(base.model_dump() | params | {"register_version": False})
        except ValueError as exc:
            client.set_terminated(run.info.run_id, "FAILED")
            raise ConfigError(f"trial {trial.number}: parameters {params} make an invalid config: {exc}") from None
        try:
            result = run_training(
                trial_cfg,
                artifact_root=artifact_root,
                progress=progress,
                notify=lambda _: None,
                run_id=run.info.run_id,
                negatives_cache=negatives_cache,
                callbacks=[pruning_callback(trial, golden, metric, cfg.report_every_steps, run.info.run_id)],
            )
        except optuna.TrialPruned:
            client.set_tag(run.info.run_id, "optuna.trial_state", "PRUNED")
            client.set_terminated(run.info.run_id, "KILLED")
            raise
        except Exception:
            client.set_tag(run.info.run_id, "optuna.trial_state", "FAIL")
            raise
        client.set_tag(run.info.run_id, "optuna.trial_state", "COMPLETE")
        trial.set_user_attr("model_uri", result.model_uri)
        trial.set_user_attr("contract_tags", result.contract_tags)
        return result.metrics[metric]

    def say_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        try:
            best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "-"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        notify(f"trial {trial.number:3d}  {trial.state.name.lower():8s}  {metric} {value}  [{params}]  best {best}")

    started, cpu_started = time.perf_counter(), cpu_seconds()
    study.optimize(objective, n_trials=cfg.n_trials, timeout=cfg.timeout, callbacks=[say_trial], catch=(EmbedopsError,))
    return finish_study(
        study,
        client,
        parent,
        cfg,
        register=register,
        ledger=ledger,
        actor=actor,
        seconds=time.perf_counter() - started,
        cpu=cpu_seconds() - cpu_started,
    )


def cpu_seconds() -> float:
    """CPU time of this process (all its threads: torch's too) and of the children it waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def study_parent_run(study: optuna.Study, client: Any, experiment_id: str, cfg: TuneConfig) -> str:
    """The study's one MLflow run: created by its first worker, reopened by the others and on resume."""
    parent = study.user_attrs.get(PARENT_ATTR)
    if parent:
        client.update_run(parent, status="RUNNING")
        return str(parent)
    # Under `mlflow run` the project's run becomes the study's run.
    adopted = os.environ.pop("MLFLOW_RUN_ID", None)
    run = client.get_run(adopted) if adopted else client.create_run(experiment_id, run_name=study.study_name)
    client.set_tag(run.info.run_id, "optuna.study", study.study_name)
    client.set_tag(run.info.run_id, "embedops.job", "tune")
    client.log_param(run.info.run_id, "objective", f"{cfg.objective.direction} {cfg.objective.metric}")
    client.log_param(
        run.info.run_id,
        "search_space",
        json.dumps({k: v.model_dump(exclude_none=True) for k, v in cfg.search_space.items()})[:6000],
    )
    client.log_param(run.info.run_id, "sampler", cfg.sampler.type)
    client.log_param(run.info.run_id, "pruner", cfg.pruner.type)
    study.set_user_attr(PARENT_ATTR, run.info.run_id)
    return str(run.info.run_id)


def finish_study(
    study: optuna.Study,
    client: Any,
    parent: str,
    cfg: TuneConfig,
    *,
    register: bool,
    ledger: Any,
    actor: str,
    seconds: float,
    cpu: float = 0.0,
) -> StudyResult:
    from optuna.trial import TrialState

    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] += 1
    try:
        best = study.best_trial
    except ValueError:
        client.set_terminated(parent, "FAILED")
        raise EmbedopsError(f"study {study.study_name} has no completed trial yet ({counts})") from None
    assert best.value is not None  # the best trial is a completed one, so it has a value
    client.log_metric(parent, f"best_{cfg.objective.metric}", float(best.value))
    for key, value in best.params.items():
        client.set_tag(parent, f"best.{key}", str(value))
    client.set_tag(parent, "best_trial", str(best.number))
    # Each worker logs its own share; several workers on one study add up in the run's metric history.
    client.log_metric(parent, "worker_seconds", seconds)
    client.log_metric(parent, "worker_cpu_seconds", cpu)
    version = register_best(best, client, cfg, ledger=ledger, actor=actor) if register else None
    client.set_terminated(parent, "FINISHED")
    return StudyResult(
        study=study.study_name,
        parent_run_id=parent,
        trials=counts,
        best_params=best.params,
        best_value=float(best.value),
        best_trial=best.number,
        best_run_id=best.user_attrs.get("mlflow_run_id"),
        version=version,
        seconds=seconds,
        cpu_seconds=cpu,
    )


def register_best(best: Any, client: Any, cfg: TuneConfig, *, ledger: Any, actor: str) -> str:
    """The best trial's logged model as a new version with alias ``candidate`` (the gate still decides).

    Workers on one study all end here: under the ledger's lock for the model, the first registers
    and tags the trial's run with the version, the others find the tag.
    """
    from registry.model_logging import register_version
    from registry.moves import set_candidate

    run_id = best.user_attrs["mlflow_run_id"]
    name = cfg.base().model_name
    with ledger.mutex(name):
        done = client.get_run(run_id).data.tags.get("registered_version")
        if done:
            return str(done)
        version = register_version(
            best.user_attrs["model_uri"],
            name,
            run_id,
            best.user_attrs["contract_tags"] | {"tuning_study": cfg.study_name(), "tuning_trial": str(best.number)},
        )
        client.set_tag(run_id, "registered_version", version)
        set_candidate(
            ledger,
            name=name,
            version=version,
            actor=actor,
            reason=f"best trial {best.number} of study {cfg.study_name()} (not yet gated)",
        )
    return version
