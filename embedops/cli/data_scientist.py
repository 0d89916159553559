"""Commands for data scientists: train, tune, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from embedops.cli.common import (
    LOSS_CHOICES,
    PRECISION_CHOICES,
    DebugOpt,
    JsonOpt,
    app,
    choice_opt,
    opt,
    run_job,
)
from embedops.cli.render import render_training
from embedops.core.settings import Settings
from evaluation.golden import DEFAULT_SPLIT

if TYPE_CHECKING:
    from evaluation.job import EvaluationReport
    from training.job import TrainResult
    from training.tune import StudyResult


# The flags train and tune share, each overriding the training-config key of its name (--name: model_name).
TRAINING_FLAGS = (
    "data data_split golden golden_split loss epochs max_steps batch_size learning_rate base_model name precision seed"
).split()


def training_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """Training-config overrides from a command's parsed flags (``ctx.params``); None: a flag not given."""
    return {("model_name" if flag == "name" else flag): params[flag] for flag in TRAINING_FLAGS}


@app.command(rich_help_panel="Data scientists")
def train(
    ctx: typer.Context,
    config: Annotated[Path | None, opt("YAML training config; flags override it.", "--config", "-c")] = None,
    data: Annotated[str | None, opt("Pairs/triplets (JSONL, CSV, Parquet) or a BEIR folder.")] = None,
    data_split: Annotated[str | None, opt("qrels split when --data is a BEIR folder.")] = None,
    golden: Annotated[str | None, opt("BEIR folder to score the model on after training.")] = None,
    golden_split: Annotated[str | None, opt("Split of the golden set.")] = None,
    loss: Annotated[str | None, choice_opt("Training loss.", LOSS_CHOICES)] = None,
    epochs: Annotated[float | None, opt("Passes over the data.")] = None,
    max_steps: Annotated[int | None, opt("Stop after N optimizer steps (overrides --epochs).")] = None,
    batch_size: Annotated[int | None, opt("Pairs per batch (in-batch negatives: bigger is harder).")] = None,
    learning_rate: Annotated[float | None, opt("Peak learning rate.")] = None,
    base_model: Annotated[str | None, opt("Local model folder (default: bundled all-MiniLM-L6-v2).")] = None,
    name: Annotated[str | None, opt("Registered model name.")] = None,
    hard_negatives: Annotated[
        bool | None, opt("Mine hard negatives with the base model.", "--hard-negatives/--no-hard-negatives")
    ] = None,
    precision: Annotated[
        str | None, choice_opt("Autocast precision; bf16 is faster on CPUs with AMX.", PRECISION_CHOICES)
    ] = None,
    seed: Annotated[int | None, opt("Random seed.")] = None,
    evaluate_base: Annotated[bool, opt("Also score the base model on the golden set.", "--evaluate-base")] = False,
    register: Annotated[bool, opt("Register the model as a new version.", "--register/--no-register")] = True,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Fine-tune an embedding model and log the run (and a new registered version) to MLflow."""

    def job(settings: Settings) -> TrainResult:
        from registry.access import require_can_register
        from training.config import load_config
        from training.job import run_training

        cfg = load_config(
            config,
            **training_overrides(ctx.params),
            hard_negatives=hard_negatives,
            register_version=None if register else False,
        )
        if cfg.register_version is not False:
            require_can_register(settings.tracking_uri, cfg.model_name)
        return run_training(
            cfg,
            artifact_root=settings.artifact_root,
            evaluate_base=evaluate_base,
            negatives_cache=settings.negatives_cache_dir,
        )

    run_job(job, render_training, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Data scientists")
def tune(
    ctx: typer.Context,
    config: Annotated[
        Path | None, opt("Tune YAML: train settings, search_space, objective, sampler, pruner.", "--config", "-c")
    ] = None,
    data: Annotated[str | None, opt("Training pairs/triplets or a BEIR folder.")] = None,
    data_split: Annotated[str | None, opt("qrels split when --data is a BEIR folder.")] = None,
    golden: Annotated[str | None, opt("BEIR folder holding the objective's dev split.")] = None,
    golden_split: Annotated[
        str | None, opt("The dev split the objective is scored on (never the gate's test).")
    ] = None,
    n_trials: Annotated[int | None, opt("Trials this process runs (several workers on one study add up).")] = None,
    timeout: Annotated[float | None, opt("Stop starting new trials after this many seconds.")] = None,
    storage: Annotated[str | None, opt("Optuna storage URL (default: sqlite:///$EMBEDOPS_HOME/optuna.db).")] = None,
    study: Annotated[str | None, opt("Study name (default: <model name>-tune); reuse it to resume or share.")] = None,
    loss: Annotated[str | None, choice_opt("Training loss of every trial.", LOSS_CHOICES)] = None,
    epochs: Annotated[float | None, opt("Passes over the data (unless searched).")] = None,
    max_steps: Annotated[int | None, opt("Stop each trial after N steps.")] = None,
    batch_size: Annotated[int | None, opt("Pairs per batch (unless searched).")] = None,
    learning_rate: Annotated[float | None, opt("Peak learning rate (unless searched).")] = None,
    base_model: Annotated[str | None, opt("Local model folder (default: bundled all-MiniLM-L6-v2).")] = None,
    name: Annotated[str | None, opt("Registered model name for the best trial.")] = None,
    precision: Annotated[str | None, choice_opt("Autocast precision of every trial.", PRECISION_CHOICES)] = None,
    seed: Annotated[int | None, opt("Training seed of every trial.")] = None,
    register: Annotated[
        bool, opt("Register the best trial as a version (alias candidate).", "--register/--no-register")
    ] = True,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Search fine-tuning settings with Optuna; every trial is a nested MLflow run; the best is registered."""

    def job(settings: Settings) -> StudyResult:
        from registry.access import require_can_register, resolve_actor
        from registry.ledger import Ledger
        from training.tune import run_study
        from training.tune_config import load_tune_config

        cfg = load_tune_config(
            config,
            training_overrides(ctx.params),
            n_trials=n_trials,
            timeout=timeout,
            storage=storage,
            study=study,
        )
        acting = resolve_actor(settings.tracking_uri, None)
        if register:
            require_can_register(settings.tracking_uri, cfg.base().model_name)
        return run_study(
            cfg,
            home=settings.home,
            artifact_root=settings.artifact_root,
            register=register,
            ledger=Ledger(settings.ledger_url),
            actor=acting,
            notify=lambda line: typer.echo(line, err=as_json),
            negatives_cache=settings.negatives_cache_dir,
        )

    def render(result: StudyResult, settings: Settings) -> None:
        trials = ", ".join(f"{n} {state}" for state, n in result.trials.items() if n)
        typer.echo(f"study     {result.study}: {trials} (parent run {result.parent_run_id})")
        params = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items()
        )
        typer.echo(f"best      trial {result.best_trial}: {result.best_value:.4f} with {params}")
        typer.echo(f"time      {result.seconds / 60:.1f} min wall, {result.cpu_seconds / 60:.1f} min CPU (this worker)")
        if result.version:
            typer.echo(f"model     version {result.version} (alias candidate; the gate decides on production)")
        typer.echo(f"browse    {settings.ui_command()}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Data scientists")
def evaluate(
    model: Annotated[str, opt("Model: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ID/model or a folder.")],
    golden: Annotated[str, opt("BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    golden_split: Annotated[str, opt("Split of the golden set.", "--golden-split")] = DEFAULT_SPLIT,
    split: Annotated[str | None, typer.Option("--split", hidden=True, help="The old name of --golden-split.")] = None,
    precision: Annotated[str, choice_opt("Autocast where the CPU/GPU runs bf16 natively.", PRECISION_CHOICES)] = "fp32",
    batch_size: Annotated[int, opt("Texts per encode batch.")] = 32,
    latency_calls: Annotated[int, opt("Single-text encode calls for latency percentiles (0: skip).")] = 100,
    strict: Annotated[bool, opt("Fail on qrels that name unknown ids instead of skipping them.", "--strict")] = False,
    drop_self_matches: Annotated[
        bool, opt("Drop each query's own id from its ranking (ArguAna-style sets).", "--drop-self-matches")
    ] = False,
    cache: Annotated[bool, opt("Reuse cached corpus embeddings.", "--cache/--no-cache")] = True,
    experiment: Annotated[str, opt("MLflow experiment of the evaluation run.")] = "embedops-evaluation",
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Score a model on a golden set: per-query metrics, bootstrap CIs, latency; logged to MLflow."""

    def job(settings: Settings) -> EvaluationReport:
        from dataclasses import replace

        from embedops.core.names import validate_name
        from evaluation.job import run_evaluation
        from evaluation.tracking import log_evaluation

        validate_name(experiment, "experiment name")
        from registry.verified import load_reference

        report, result = run_evaluation(
            model,
            golden,
            split or golden_split,
            cache_dir=settings.cache_dir if cache else None,
            precision=precision,
            strict=strict,
            drop_self_matches=drop_self_matches,
            batch_size=batch_size,
            latency_calls=latency_calls,
            loader=load_reference,
        )
        run_id = log_evaluation(report, result, experiment=experiment, artifact_root=settings.artifact_root)
        return replace(report, run_id=run_id)

    def render(result: EvaluationReport, settings: Settings) -> None:
        lines = [
            f"model     {result.model} (weights {result.model_digest[:12]}, {result.precision})",
            f"golden    {result.golden_path} [{result.split}]: {result.n_queries} queries, "
            f"{result.n_documents} documents (digest {result.golden_digest[:12]})",
            "",
            f"{'metric':16s} {'mean':>7s}   95% CI",
        ]
        for name, value in result.metrics.items():
            low, high = result.ci[name]
            lines.append(f"{name:16s} {value:7.4f}   [{low:.4f}, {high:.4f}]")
        if result.latency:
            lat = result.latency
            lines += [
                "",
                f"latency   p50 {lat['latency_p50_ms']:.1f} ms  p95 {lat['latency_p95_ms']:.1f} ms  "
                f"p99 {lat['latency_p99_ms']:.1f} ms  throughput {lat['throughput_texts_per_s']:.0f} texts/s",
            ]
        source = "cached" if result.cache_hit else "computed"
        lines += [
            "",
            f"run       {result.run_id}  (corpus embeddings {source}, {result.seconds:.1f} s)",
            f"browse    {settings.ui_command()}",
        ]
        lines += [f"warning   {warning}" for warning in result.warnings]
        typer.echo("\n".join(lines))

    run_job(job, render, as_json=as_json, debug=debug)
