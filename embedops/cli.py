"""The ``embedops`` command: one subcommand per job.

Every command takes ``--json`` (one JSON object on stdout, everything else on stderr) and
``--debug`` (full tracebacks). Exit codes: 0 done, 1 error, 2 usage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from embedops.core.settings import Settings, apply_offline_env, configure
from evaluation.golden import DEFAULT_SPLIT
from evaluation.precision import Precision
from training.config import LossName

apply_offline_env()  # before anything imports transformers or mlflow

app = typer.Typer(
    name="embedops", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="MLOps for text-embedding models: fine-tune, evaluate, gate, promote, watch for drift.",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout for scripts.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks and library logs.")]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_job(job: Callable[[Settings], dict[str, Any]], render: Callable[[dict[str, Any], Settings], None], *,
            as_json: bool, debug: bool, exit_code: Callable[[dict[str, Any]], int] | None = None) -> None:
    """Run ``job`` with the store configured; map errors to one line and an exit code."""
    from embedops.core.errors import EmbedopsError, Terminated
    from registry.promotion import GateRejected

    logging.basicConfig(level=logging.INFO if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = configure()
        quiet_libraries(debug)
        # In --json mode libraries that print (the trainer's log lines) must not touch stdout.
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            result = job(settings)
    except GateRejected as exc:
        # A verdict, not a failure of the tool: the decision is still the job's output.
        if as_json:
            typer.echo(json.dumps(exc.payload, default=str))
        else:
            render_decision(exc.payload)
        typer.echo(f"rejected: {exc}", err=True)
        raise typer.Exit(3) from None
    except EmbedopsError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except Terminated:
        typer.echo("terminated (SIGTERM): the run is marked FAILED and nothing was registered", err=True)
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was registered", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug:
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                   err=True)
        raise typer.Exit(1) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return  # a torchrun worker: rank 0 reports for the whole job
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        render(result, settings)
    code = exit_code(result) if exit_code else 0
    if code:
        raise typer.Exit(code)


def quiet_libraries(debug: bool) -> None:
    """Library chatter (MLflow's table migrations, model-load reports) hides the lines that matter."""
    level = logging.INFO if debug else logging.ERROR
    for noisy in ("mlflow", "alembic", "transformers", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(level)


def format_metrics(metrics: dict[str, float], names: tuple[str, ...] = ("ndcg_at_10", "recall_at_10",
                                                                          "mrr_at_10", "map_at_100")) -> str:
    return "  ".join(f"{n} {metrics[n]:.4f}" for n in names if n in metrics)


def render_training(result: dict[str, Any], settings: Settings) -> None:
    train = result["train"]
    lines = [
        f"run       {result['run_id']}",
        f"model     {result['model_uri']}" + ("" if result["version"] else "  (not registered)"),
        f"data      {result['data']['rows']} rows from {result['data']['source']} "
        f"(digest {result['data']['digest'][:12]})",
        f"training  {int(train['train_steps'])} steps in {train['train_seconds']:.1f} s "
        f"({train['train_pairs_per_second']:.1f} pairs/s), final loss {train['train_loss']:.4f}",
    ]
    if result["base_metrics"]:
        lines.append(f"base      {format_metrics(result['base_metrics'])}")
    if result["metrics"]:
        lines.append(f"golden    {format_metrics(result['metrics'])}")
    lines.append(f"browse    {settings.ui_command()}")
    typer.echo("\n".join(lines))


def opt(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text)


def choice_opt(help_text: str, choices: tuple[str, ...]) -> Any:
    """An option whose values come from the type the job uses: a typo is a usage error (exit 2) naming them."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"'{value}' is not one of {', '.join(choices)}")
        return value

    return typer.Option(help=f"{help_text} ({' | '.join(choices)})", callback=check)


PRECISION_CHOICES = get_args(Precision)
LOSS_CHOICES = get_args(LossName)


@app.command()
def train(
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
    precision: Annotated[str | None, choice_opt("Autocast precision; bf16 is faster on CPUs with AMX.",
                                                 PRECISION_CHOICES)] = None,
    seed: Annotated[int | None, opt("Random seed.")] = None,
    evaluate_base: Annotated[bool, opt("Also score the base model on the golden set.", "--evaluate-base")] = False,
    register: Annotated[bool, opt("Register the model as a new version.", "--register/--no-register")] = True,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Fine-tune an embedding model and log the run (and a new registered version) to MLflow."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.access import require_can_register
        from training.config import load_config
        from training.job import run_training

        cfg = load_config(config, data=data, data_split=data_split, golden=golden, golden_split=golden_split,
                          loss=loss, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                          learning_rate=learning_rate, base_model=base_model, model_name=name,
                          hard_negatives=hard_negatives, precision=precision, seed=seed,
                          register_version=None if register else False)
        if cfg.register_version is not False:
            require_can_register(settings.tracking_uri, cfg.model_name)
        return run_training(cfg, artifact_root=settings.artifact_root, evaluate_base=evaluate_base).to_dict()

    run_job(job, render_training, as_json=as_json, debug=debug)


@app.command()
def tune(
    config: Annotated[Path | None, opt("Tune YAML: train settings, search_space, objective, sampler, pruner.",
                                       "--config", "-c")] = None,
    data: Annotated[str | None, opt("Training pairs/triplets or a BEIR folder.")] = None,
    data_split: Annotated[str | None, opt("qrels split when --data is a BEIR folder.")] = None,
    golden: Annotated[str | None, opt("BEIR folder holding the objective's dev split.")] = None,
    golden_split: Annotated[str | None, opt("The dev split the objective is scored on (never the gate's test).")
                            ] = None,
    n_trials: Annotated[int | None, opt("Trials this process runs (several workers on one study add up).")] = None,
    timeout: Annotated[float | None, opt("Stop starting new trials after this many seconds.")] = None,
    storage: Annotated[str | None, opt("Optuna storage URL (default: sqlite:///$EMBEDOPS_HOME/optuna.db).")] = None,
    study: Annotated[str | None, opt("Study name (default: <model name>-tune); reuse it to resume or share.")
                     ] = None,
    loss: Annotated[str | None, choice_opt("Training loss of every trial.", LOSS_CHOICES)] = None,
    epochs: Annotated[float | None, opt("Passes over the data (unless searched).")] = None,
    max_steps: Annotated[int | None, opt("Stop each trial after N steps.")] = None,
    batch_size: Annotated[int | None, opt("Pairs per batch (unless searched).")] = None,
    learning_rate: Annotated[float | None, opt("Peak learning rate (unless searched).")] = None,
    base_model: Annotated[str | None, opt("Local model folder (default: bundled all-MiniLM-L6-v2).")] = None,
    name: Annotated[str | None, opt("Registered model name for the best trial.")] = None,
    precision: Annotated[str | None, choice_opt("Autocast precision of every trial.", PRECISION_CHOICES)] = None,
    seed: Annotated[int | None, opt("Training seed of every trial.")] = None,
    register: Annotated[bool, opt("Register the best trial as a version (alias candidate).",
                                  "--register/--no-register")] = True,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Search fine-tuning settings with Optuna; every trial is a nested MLflow run; the best is registered."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.access import require_can_register, resolve_actor
        from registry.ledger import Ledger
        from training.tune import run_study
        from training.tune_config import load_tune_config

        cfg = load_tune_config(config, dict(
            data=data, data_split=data_split, golden=golden, golden_split=golden_split, loss=loss, epochs=epochs,
            max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate, base_model=base_model,
            model_name=name, precision=precision, seed=seed), n_trials=n_trials, timeout=timeout, storage=storage,
            study=study)
        acting = resolve_actor(settings.tracking_uri, None)
        if register:
            require_can_register(settings.tracking_uri, cfg.base().model_name)
        url = cfg.storage or f"sqlite:///{settings.home / 'optuna.db'}"
        settings.home.mkdir(parents=True, exist_ok=True)
        return run_study(cfg, storage_url=url, artifact_root=settings.artifact_root, register=register,
                         ledger=Ledger(settings.ledger_url), actor=acting,
                         notify=lambda line: typer.echo(line, err=as_json))

    def render(result: dict[str, Any], settings: Settings) -> None:
        trials = ", ".join(f"{n} {state}" for state, n in result["trials"].items() if n)
        typer.echo(f"study     {result['study']}: {trials} (parent run {result['parent_run_id']})")
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in result["best_params"].items())
        typer.echo(f"best      trial {result['best_trial']}: {result['best_value']:.4f} with {params}")
        if result["version"]:
            typer.echo(f"model     version {result['version']} (alias candidate; the gate decides on production)")
        typer.echo(f"browse    {settings.ui_command()}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command()
def evaluate(
    model: Annotated[str, opt("Model: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ID/model or a folder.")],
    golden: Annotated[str, opt("BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    split: Annotated[str, opt("Split of the golden set.")] = DEFAULT_SPLIT,
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

    def job(settings: Settings) -> dict[str, Any]:
        from dataclasses import replace

        from embedops.core.names import validate_name
        from evaluation.job import run_evaluation
        from evaluation.tracking import log_evaluation

        validate_name(experiment, "experiment name")
        from registry.verified import load_reference

        report, result = run_evaluation(
            model, golden, split, cache_dir=settings.cache_dir if cache else None,
            precision=precision, strict=strict, drop_self_matches=drop_self_matches, batch_size=batch_size,
            latency_calls=latency_calls, loader=load_reference)
        run_id = log_evaluation(report, result, experiment=experiment, artifact_root=settings.artifact_root)
        return replace(report, run_id=run_id).to_dict()

    def render(result: dict[str, Any], settings: Settings) -> None:
        lines = [f"model     {result['model']} (weights {result['model_digest'][:12]}, {result['precision']})",
                 f"golden    {result['golden_path']} [{result['split']}]: {result['n_queries']} queries, "
                 f"{result['n_documents']} documents (digest {result['golden_digest'][:12]})",
                 "", f"{'metric':16s} {'mean':>7s}   95% CI"]
        for name, value in result["metrics"].items():
            low, high = result["ci"][name]
            lines.append(f"{name:16s} {value:7.4f}   [{low:.4f}, {high:.4f}]")
        if result["latency"]:
            lat = result["latency"]
            lines += ["", f"latency   p50 {lat['latency_p50_ms']:.1f} ms  p95 {lat['latency_p95_ms']:.1f} ms  "
                          f"p99 {lat['latency_p99_ms']:.1f} ms  throughput {lat['throughput_texts_per_s']:.0f} texts/s"]
        source = "cached" if result["cache_hit"] else "computed"
        lines += ["", f"run       {result['run_id']}  (corpus embeddings {source}, {result['seconds']:.1f} s)",
                  f"browse    {settings.ui_command()}"]
        for warning in result["warnings"]:
            lines.append(f"warning   {warning}")
        typer.echo("\n".join(lines))

    run_job(job, render, as_json=as_json, debug=debug)


ActorOpt = Annotated[str | None, opt("Who is acting (default: EMBEDOPS_ACTOR, else the OS user).", "--actor")]


def registry_context(settings: Settings, who: str | None, policy_managers: list[str],
                     default_actor: str | None = None) -> Any:
    from embedops.core.settings import release_managers
    from registry.access import model_grant, resolve_actor
    from registry.ledger import Ledger
    from registry.promotion import Context

    acting = resolve_actor(settings.tracking_uri, who, default_actor)
    return Context(ledger=Ledger(settings.ledger_url), actor=acting, artifact_root=settings.artifact_root,
                   cache_dir=settings.cache_dir, release_managers=release_managers(policy_managers),
                   grant_lookup=lambda name: model_grant(settings.tracking_uri, acting, name))


def render_decision(payload: dict[str, Any]) -> None:
    decision = payload.get("decision")
    if decision:
        typer.echo(f"gate      {payload['model']} v{decision['candidate_version']} vs production "
                   f"v{decision['production_version']}: {decision['verdict'].upper()}")
        for check in decision["checks"]:
            mark = "waived" if check["waived"] else ("ok" if check["passed"] else "FAIL")
            typer.echo(f"  {mark:6s} {check['name']:24s} {check['detail']}")
        if decision["reindex_required"]:
            typer.echo("  note   the vector index must be rebuilt (dimension or tokenizer changed)")
        typer.echo(f"report    decision run {payload['decision_run_id']} "
                   "(artifacts gate/report.html, gate/decision.json)")


@app.command()
def register(
    path: Annotated[str, typer.Argument(help="A sentence-transformers folder with safetensors weights, or a "
                                              "logged model: runs:/RUN_ID/model (a `train --no-register` run).")],
    name: Annotated[str, opt("Registered model name.")],
    golden: Annotated[str | None, opt("BEIR folder: record the version's golden-set metrics.")] = None,
    golden_split: Annotated[str, opt("Split of the golden set.")] = DEFAULT_SPLIT,
    strip_remote_code: Annotated[
        bool, opt("Drop auto_map entries and *.py files instead of refusing the folder (recorded on the "
                  "version); embedops never runs a model's own code either way.", "--strip-remote-code")
    ] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Register an existing model folder (e.g. the base model) or a run's logged model, with its contract tags."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.access import require_can_register
        from registry.register import register_folder

        require_can_register(settings.tracking_uri, name)

        return register_folder(path, name, golden=golden, golden_split=golden_split,
                               artifact_root=settings.artifact_root, strip_remote_code=strip_remote_code)

    def render(result: dict[str, Any], settings: Settings) -> None:
        typer.echo(f"registered {result['model_uri']} (run {result['run_id']})")
        if result["metrics"]:
            typer.echo(f"golden     {format_metrics(result['metrics'])}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command()
def models(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List a model's versions with their aliases, key metrics and gate verdicts."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.store import list_versions

        return {"model": name, "versions": [
            {"version": v.version, "aliases": v.aliases, "ndcg_at_10": v.tags.get("ndcg_at_10"),
             "recall_at_10": v.tags.get("recall_at_10"), "gate_verdict": v.tags.get("gate_verdict"),
             "embedding_dim": v.tags.get("embedding_dim"), "run_id": v.run_id, "created": v.created}
            for v in list_versions(name)]}

    def render(result: dict[str, Any], settings: Settings) -> None:
        typer.echo(f"{'version':>7s}  {'aliases':24s} {'ndcg@10':>8s} {'recall@10':>9s}  {'gate':8s} run")
        for v in result["versions"]:
            typer.echo(f"{v['version']:>7s}  {','.join(v['aliases']) or '-':24s} {v['ndcg_at_10'] or '-':>8.8s} "
                       f"{v['recall_at_10'] or '-':>9.9s}  {v['gate_verdict'] or '-':8s} {v['run_id']}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, opt("The version to put in production: a number, or candidate / previous.")],
    golden: Annotated[str | None, opt("BEIR folder for the gate (or golden: in the policy).")] = None,
    golden_split: Annotated[str | None, opt("Split of the golden set (default: the policy's, test).")] = None,
    policy: Annotated[Path | None, opt("Gate policy YAML (default: the documented policy).")] = None,
    reason: Annotated[str, opt("Why; recorded in the ledger (required with --skip-gate).")] = "",
    initial: Annotated[bool, opt("First promotion: nothing is in production yet.", "--initial")] = False,
    skip_gate: Annotated[bool, opt("Move without the gate (needs --reason; recorded).", "--skip-gate")] = False,
    gate_only: Annotated[
        bool, opt("Run the gate; on a pass point `candidate` at the version, leave production.", "--gate-only")
    ] = False,
    expect_production: Annotated[
        str | None, opt("Move only if production is still this version (default: what the gate ran against).")
    ] = None,
    allow_reindex: Annotated[
        bool, opt("With --skip-gate: allow a version whose vectors differ in kind from production's "
                  "(dimension, tokenizer, normalization, similarity); every index must be rebuilt.",
                  "--allow-reindex")
    ] = False,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Gate a version against production and, if it passes, make it production (exit 3 if rejected)."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.gate.policy import load_policy
        from registry.promotion import promote as promote_version

        gate_policy = load_policy(policy)
        ctx = registry_context(settings, actor_name, gate_policy.release_managers)
        return promote_version(ctx, name, version, policy=gate_policy, golden=golden, golden_split=golden_split,
                               reason=reason, initial=initial, skip_gate=skip_gate,
                               expected_production=expect_production, gate_only=gate_only,
                               allow_reindex=allow_reindex)

    def render(result: dict[str, Any], settings: Settings) -> None:
        render_decision(result)
        if "candidate" in result:
            typer.echo(f"candidate  {result['model']} is now v{result['candidate']}; production stays "
                       f"v{result['production']}")
            return
        was = f"v{result['previous_production']}" if result["previous_production"] else "nothing"
        typer.echo(f"production {result['model']} is now v{result['production']} (was {was})")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: Annotated[str, opt("Why; recorded in the ledger.")],
    to_version: Annotated[str | None, opt("Roll back to this version instead of `previous`.")] = None,
    policy: Annotated[Path | None, opt("Policy file holding release_managers, if any.")] = None,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Point production back at the previous version (or --to-version), which must still load."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.gate.policy import load_policy
        from registry.promotion import rollback as rollback_model

        ctx = registry_context(settings, actor_name, load_policy(policy).release_managers)
        return rollback_model(ctx, name, reason=reason, to_version=to_version)

    def render(result: dict[str, Any], settings: Settings) -> None:
        typer.echo(f"production {result['model']} is now v{result['production']} "
                   f"(was v{result['previous_production']})")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    at: Annotated[str | None, opt("ISO time: which version was production then.")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The audit ledger of a model's alias moves; with --at, what production was at that time."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.promotion import history as ledger_history

        return ledger_history(registry_context(settings, None, []), name, parse_time(at, "--at"))

    def render(result: dict[str, Any], settings: Settings) -> None:
        if "at" in result:
            version = result["production_at"]
            typer.echo(f"at {result['at']} production was " + (f"v{version}" if version else "not set"))
            return
        width = max([5, *(len(m["actor"]) for m in result["moves"])])
        typer.echo(f"{'time (UTC)':24s} {'actor':{width}s} {'action':9s} {'alias':10s} {'from':>5s} {'to':>5s} "
                   f"{'outcome':9s} reason")
        for m in result["moves"]:
            typer.echo(f"{m['ts']:24s} {m['actor']:{width}s} {m['action']:9s} {m['alias']:10s} "
                       f"{m['from_version'] or '-':>5s} {m['to_version'] or '-':>5s} {m['outcome']:9s} "
                       f"{m['reason']}" + (f" ({m['detail']})" if m["detail"] else ""))

    run_job(job, render, as_json=as_json, debug=debug)


def parse_time(value: str | None, flag: str) -> Any:
    from embedops.core.errors import ConfigError
    from embedops.core.times import parse_iso

    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise ConfigError(f"{flag} '{value}' is not an ISO time (e.g. 2026-11-26T14:05:00Z)") from None


def retrain_callable(settings: Settings, config_path: Path, who: str | None) -> Any:
    from embedops.pipelines import load_retrain_config, retrain
    from registry.access import require_can_register

    cfg = load_retrain_config(config_path)
    ctx = registry_context(settings, who, [], default_actor="embedops-retrain")
    require_can_register(settings.tracking_uri, cfg.model_name)

    def run(trigger: dict[str, Any]) -> dict[str, Any]:
        return retrain(cfg, ctx, artifact_root=settings.artifact_root, trigger=trigger)

    return run


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str, opt("The alias whose version is served.")] = "production",
    host: Annotated[str, opt("Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, opt("Port to listen on.")] = 5001,
    workers: Annotated[int, opt("Scoring-server worker processes.")] = 1,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Serve the version behind an alias over HTTP (MLflow's scoring server): POST texts, get vectors.

    The version is verified against its registered manifest and loaded by embedops (never by
    MLflow's loader, never with remote code). The alias is resolved once, at start: after a
    promotion, restart the process to serve the new version.
    """
    def job(settings: Settings) -> dict[str, Any]:
        from registry.serve import plan_serving

        plan = plan_serving(name, alias, copies=settings.home / "serving", host=host, port=port, workers=workers)
        return {"model": plan.model, "alias": plan.alias, "version": plan.version, "url": plan.url,
                "invocations": f"{plan.url}/invocations", "folder": str(plan.folder), "argv": plan.argv,
                "env": plan.env}

    def render(result: dict[str, Any], settings: Settings) -> None:
        typer.echo(f"serving   {result['model']} v{result['version']} (alias {result['alias']}) at "
                   f"{result['invocations']}")
        typer.echo(f"try       curl -s {result['invocations']} -H 'Content-Type: application/json' "
                   "-d '{\"inputs\": [\"how do I pause Clockwork?\"]}'")

    result: dict[str, Any] = {}

    def keep(payload: dict[str, Any], settings: Settings) -> None:
        result.update(payload, tracking_uri=settings.tracking_uri)
        if as_json:
            typer.echo(json.dumps({k: v for k, v in payload.items() if k not in ("argv", "env", "folder")}))
        else:
            render(payload, settings)

    run_job(job, keep, as_json=False, debug=debug)
    sys.stdout.flush()
    # The server replaces this process: signals from systemd or Kubernetes reach it directly.
    os.execve(result["argv"][0], result["argv"], dict(os.environ) | result["env"])


@app.command()
def drift(
    name: Annotated[str, typer.Argument(help="Registered model name (its production version embeds).")],
    current: Annotated[Path, opt("Traffic: a JSONL file or a folder of them ({\"text\", \"ts\"} per line).")],
    reference: Annotated[
        str | None, opt("Reference texts in the same format (default: production's training queries).")
    ] = None,
    start: Annotated[str | None, opt("Current window start (ISO time, inclusive).")] = None,
    end: Annotated[str | None, opt("Current window end (ISO time, exclusive).")] = None,
    config: Annotated[Path | None, opt("Drift config YAML: window sizes, trigger thresholds, cooldown.")] = None,
    retrain_config: Annotated[str | None, opt("Retrain config: lets a flagged window start a retrain.")] = None,
    report: Annotated[bool, opt("Build the full Evidently HTML report even without drift.", "--report")] = False,
    drift_exit_code: Annotated[
        int, opt("Exit code when drift is flagged (0 under `mlflow run`, which fails a run on any other).")
    ] = 4,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compare recent traffic with a reference in the production model's embedding space (exit 4: drift)."""

    def job(settings: Settings) -> dict[str, Any]:
        from monitoring.config import load_drift_config
        from monitoring.job import run_drift
        from monitoring.state import TriggerStore
        from monitoring.windows import read_window
        from registry.ledger import Ledger

        cfg = load_drift_config(config)
        # Empty strings count as "not given": MLproject parameters cannot be left out.
        if not reference:
            from embedops.pipelines import default_reference

            ref = default_reference(name, size=cfg.reference_size, seed=cfg.seed)
        else:
            ref = read_window(reference, size=cfg.reference_size, seed=cfg.seed)
        cur = read_window(current, start=parse_time(start, "--start"), end=parse_time(end, "--end"),
                          size=cfg.current_size, seed=cfg.seed)
        hook = retrain_callable(settings, Path(retrain_config), actor_name) if retrain_config else None
        return run_drift(name, ref, cur, cfg, trigger_store=TriggerStore(Ledger(settings.ledger_url)),
                         cache_dir=settings.cache_dir, artifact_root=settings.artifact_root, retrain=hook,
                         force_report=report)

    def render(result: dict[str, Any], settings: Settings) -> None:
        signals = result["tokenizer"]["current"]
        typer.echo(f"drift     {result['model']} v{result['version']}: score (classifier AUC) {result['score']:.3f}, "
                   f"threshold {result['threshold']}, KS p = {result['p_value']:.3g} "
                   f"({result['ks_dimensions']} dimensions differ)")
        typer.echo(f"windows   current {result['window']['current']}, reference {result['window']['reference']}; "
                   f"unknown tokens {signals['unknown_token_rate']:.2%}, truncated {signals['truncation_rate']:.2%}")
        typer.echo(f"verdict   {'DRIFT' if result['drifted'] else 'no drift'}; trigger: {result['trigger']['action']} "
                   f"({result['trigger']['reason']})")
        if result["retrain"]:
            typer.echo(f"retrain   v{result['retrain']['version']} gate {result['retrain']['verdict']} "
                       f"(decision run {result['retrain']['decision_run_id']})")
        typer.echo(f"run       {result['run_id']}" + ("  (Evidently report logged)" if result["report_logged"] else ""))

    run_job(job, render, as_json=as_json, debug=debug, exit_code=lambda r: drift_exit_code if r["drifted"] else 0)


@app.command()
def retrain(
    config: Annotated[Path | None, opt("Retrain config YAML (model, training data, golden set, policy).")] = None,
    reset_breaker: Annotated[str | None, opt("Reset the circuit breaker of this model and exit.")] = None,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train a candidate on fresh data, register it and gate it (promote only with auto_promote: true)."""

    def job(settings: Settings) -> dict[str, Any]:
        from embedops.core.errors import ConfigError

        if reset_breaker:
            from embedops.core.names import validate_name
            from monitoring.state import TriggerStore
            from registry.ledger import Ledger

            TriggerStore(Ledger(settings.ledger_url)).reset_breaker(validate_name(reset_breaker))
            return {"model": reset_breaker, "breaker": "reset"}
        if config is None:
            raise ConfigError("pass --config retrain.yaml (or --reset-breaker NAME)")
        return retrain_callable(settings, config, actor_name)({"drift_run_id": None})

    def render(result: dict[str, Any], settings: Settings) -> None:
        if "breaker" in result:
            typer.echo(f"circuit breaker of {result['model']} reset")
            return
        typer.echo(f"retrain   {result['model']} v{result['version']} (training run {result['training_run_id']}); "
                   f"gate {result['verdict']} (decision run {result['decision_run_id']}); production "
                   f"v{result['production']}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command()
def doctor(
    model: Annotated[list[str] | None, opt("Check only this registered model (repeatable; default: all).")] = None,
    fix: Annotated[bool, opt("Repair what is safe: fail stale runs, put aliases back where the ledger says.",
                             "--fix")] = False,
    stale_hours: Annotated[float, opt("A run RUNNING longer than this belongs to a job that died.")] = 6.0,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Find runs left RUNNING by killed jobs, aliases on broken versions, aliases the ledger never recorded."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.access import resolve_actor
        from registry.doctor import examine
        from registry.ledger import Ledger

        return examine(Ledger(settings.ledger_url), models=model, stale_hours=stale_hours, fix=fix,
                       actor=resolve_actor(settings.tracking_uri, actor_name))

    def render(result: dict[str, Any], settings: Settings) -> None:
        for f in result["findings"]:
            state = "fixed" if f["fixed"] else ("fixable" if f["fixable"] else "needs a person")
            typer.echo(f"{f['kind']:28s} {f['subject']:40s} {state:15s} {f['detail']}")
        typer.echo(f"{'clean' if result['clean'] else 'problems'}: {len(result['findings'])} found, "
                   f"{result['fixed']} fixed, {result['remaining']} remaining "
                   f"({len(result['models'])} models checked)" + ("" if fix or result["clean"] else "; --fix repairs "
                                                                  "what is safe"))

    run_job(job, render, as_json=as_json, debug=debug, exit_code=lambda r: 0 if r["clean"] else 1)


@app.command()
def demo(
    home: Annotated[Path, opt("Fresh EMBEDOPS_HOME for the demo (an earlier demo's home is replaced).")] = Path(
        "demo-home"),
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The whole lifecycle on the bundled help center: fine-tune, gate, drift, retrain, promote, roll back.

    Uses the embedded store (sqlite + local artifacts) in --home, whatever MLFLOW_TRACKING_URI says;
    exits 1 if any step's outcome differs from the expected one.
    """
    from embedops.demo import prepare_home

    try:
        os.environ["EMBEDOPS_HOME"] = str(prepare_home(home))
    except Exception as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # Under `mlflow run` these name the project's store and run; the demo keeps to its own home.
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        os.environ.pop(key, None)

    def job(settings: Settings) -> dict[str, Any]:
        from embedops.demo import run_demo
        from training.job import say

        # The trainer prints its log lines: keep stdout for the summary.
        with contextlib.redirect_stdout(sys.stderr):
            return run_demo(settings, EXAMPLES, notify=say)

    run_job(job, render_demo, as_json=as_json, debug=debug, exit_code=lambda r: 0 if r["ok"] else 1)


def render_demo(result: dict[str, Any], settings: Settings) -> None:
    titles = [f"{n}. {step['title']}" for n, step in enumerate(result["steps"], start=1)]
    width = max(len(t) for t in titles)
    typer.echo(f"\n{'step'.ljust(width)}  {'':4s}  outcome (details below)")
    for title, step in zip(titles, result["steps"], strict=True):
        typer.echo(f"{title.ljust(width)}  {'ok' if step['ok'] else 'FAIL':4s}  {step['actual']}")
        if step["detail"]:
            typer.echo(f"{'':{width}}        {step['detail']}")
        if not step["ok"]:
            typer.echo(f"{'':{width}}        expected: {step['expected']}")
    typer.echo("\nhistory (the ledger, append-only):")
    for move in result["history"]:
        versions = f"{'v' + move['from_version'] if move['from_version'] else '-'} -> v{move['to_version']}"
        typer.echo(f"  {move['ts'][:19]}  {move['action']:9s} {move['alias']:10s} {versions:9s} "
                   f"{move['outcome']:8s} {move['actor']}: {move['reason']}")
    typer.echo("\nHTML reports:")
    for number, step in enumerate(result["steps"], start=1):
        if step["report"]:
            typer.echo(f"  step {number}: {step['report']}")
    if result.get("retrain_report"):
        typer.echo(f"  step 5, gate of the retrained model: {result['retrain_report']}")
    failed = [s["title"] for s in result["steps"] if not s["ok"]]
    typer.echo(f"\n{'every step as expected' if not failed else 'UNEXPECTED: ' + '; '.join(failed)} "
               f"in {result['seconds'] / 60:.1f} min")
    typer.echo(f"browse    {settings.ui_command()}")


def main() -> None:
    app()
