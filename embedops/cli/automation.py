"""Commands for automation (cron, Airflow, a Kubernetes CronJob): drift, retrain, doctor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from embedops.cli.common import (
    ActorOpt,
    DebugOpt,
    ExitCode,
    JsonOpt,
    app,
    opt,
    parse_time,
    run_job,
)
from embedops.core.settings import Settings

if TYPE_CHECKING:
    from embedops.pipelines import BreakerReset, RetrainResult
    from monitoring.job import DriftResult
    from monitoring.retention import PurgeResult
    from registry.doctor import DoctorReport


@app.command(rich_help_panel="Automation")
def drift(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name (its production version embeds).")],
    current: Annotated[Path, opt('Traffic: a JSONL file or a folder of them ({"text", "ts"} per line).')],
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

    def job(settings: Settings) -> DriftResult:
        from embedops.pipelines import reference_window
        from monitoring.config import load_drift_config
        from monitoring.job import run_drift
        from monitoring.redaction import Redactor
        from monitoring.state import TriggerStore
        from monitoring.windows import read_window
        from registry.ledger import Ledger

        cfg = load_drift_config(config)
        redactor = Redactor(cfg.redaction)  # both windows alike: a mask on one side only would read as drift
        ref = reference_window(name, reference, size=cfg.reference_size, seed=cfg.seed, redactor=redactor)
        cur = read_window(
            current,
            start=parse_time(start, "--start"),
            end=parse_time(end, "--end"),
            size=cfg.current_size,
            seed=cfg.seed,
            redactor=redactor,
        )
        retrain_job = None
        if retrain_config:
            from embedops.pipelines import drift_retrain
            from registry.access import require_can_register
            from registry.promotion import open_context

            retrain_job = drift_retrain(
                retrain_config,
                open_context(settings, actor_name, [], default_actor="embedops-retrain"),
                artifact_root=settings.artifact_root,
                may_register=lambda model: require_can_register(settings.tracking_uri, model),
            )
        return run_drift(
            name,
            ref,
            cur,
            cfg,
            trigger_store=TriggerStore(Ledger(settings.ledger_url)),
            cache_dir=settings.cache_dir,
            artifact_root=settings.artifact_root,
            retrain=retrain_job,
            force_report=report,
            report_dir=settings.shadow_report_dir,
        )

    def render(result: DriftResult, settings: Settings) -> None:
        from embedops.core.text import redaction_sentence

        signals = result.tokenizer["current"]
        typer.echo(
            f"drift     {result.model} v{result.version}: score (classifier AUC) {result.score:.3f}, "
            f"threshold {result.threshold}, KS p = {result.p_value:.3g} ({result.ks_dimensions} dimensions differ)"
        )
        typer.echo(
            f"windows   current {result.window['current']}, reference {result.window['reference']}; "
            f"unknown tokens {signals['unknown_token_rate']:.2%}, truncated {signals['truncation_rate']:.2%}"
        )
        typer.echo(
            f"verdict   {'DRIFT' if result.drifted else 'no drift'}; trigger: {result.trigger.action} "
            f"({result.trigger.reason})"
        )
        if result.retrain:
            typer.echo(
                f"retrain   v{result.retrain['version']} gate {result.retrain['verdict']} "
                f"(decision run {result.retrain['decision_run_id']})"
            )
        if result.retrain_error:
            typer.echo(
                f"retrain   FAILED: {result.retrain_error}\n"
                "          the window stays open: fix the cause and run the same drift job again"
            )
        typer.echo(f"privacy   {redaction_sentence(result.window['redactions'])}")
        if result.retention.get("error"):
            typer.echo(f"retention FAILED: {result.retention['error']}")
        elif removed := sum(result.retention.get("removed", {}).values()):
            typer.echo(f"retention purged {removed} stored traffic items older than {result.retention['days']} days")
        typer.echo(f"run       {result.run_id}" + ("  (Evidently report logged)" if result.report_logged else ""))

    run_job(
        job,
        render,
        as_json=as_json,
        debug=debug,
        exit_code=lambda r: (
            ExitCode.RETRAIN_FAILED if r.retrain_error else drift_exit_code if r.drifted else ExitCode.DONE
        ),
    )


@app.command(rich_help_panel="Automation")
def retrain(
    config: Annotated[Path | None, opt("Retrain config YAML (model, training data, golden set, policy).")] = None,
    reset_breaker: Annotated[str | None, opt("Reset the circuit breaker of this model and exit.")] = None,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train a candidate on fresh data, register it and gate it (promote only with auto_promote: true)."""

    def job(settings: Settings) -> RetrainResult | BreakerReset:
        from embedops.core.errors import ConfigError
        from embedops.pipelines import BreakerReset

        if reset_breaker:
            from embedops.core.names import validate_name
            from monitoring.state import TriggerStore
            from registry.access import resolve_actor
            from registry.ledger import Ledger
            from registry.store import list_versions

            list_versions(validate_name(reset_breaker))  # a typo must not "reset" a breaker nobody has
            acting = resolve_actor(settings.tracking_uri, actor_name)
            TriggerStore(Ledger(settings.ledger_url)).reset_breaker(reset_breaker, acting)
            return BreakerReset(reset_breaker)
        if config is None:
            raise ConfigError("pass --config retrain.yaml (or --reset-breaker NAME)")
        from embedops.pipelines import load_retrain_config
        from embedops.pipelines import retrain as run_retrain
        from registry.access import require_can_register
        from registry.promotion import open_context

        cfg = load_retrain_config(config)
        ctx = open_context(settings, actor_name, [], default_actor="embedops-retrain")
        require_can_register(settings.tracking_uri, cfg.model_name)
        return run_retrain(cfg, ctx, artifact_root=settings.artifact_root)

    def render(result: RetrainResult | BreakerReset, settings: Settings) -> None:
        from embedops.pipelines import BreakerReset

        if isinstance(result, BreakerReset):
            typer.echo(f"circuit breaker of {result.model} reset")
            return
        typer.echo(
            f"retrain   {result.model} v{result.version} (training run {result.training_run_id}); "
            f"gate {result.verdict} (decision run {result.decision_run_id}); production v{result.production}"
        )

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Automation")
def doctor(
    model: Annotated[list[str] | None, opt("Check only this registered model (repeatable; default: all).")] = None,
    fix: Annotated[
        bool, opt("Repair what is safe: fail stale runs, put aliases back where the ledger says.", "--fix")
    ] = False,
    stale_hours: Annotated[float, opt("A run RUNNING longer than this belongs to a job that died.")] = 6.0,
    retention_days: Annotated[
        float, opt("Traffic data older than this is reported (your drift config's retention_days).")
    ] = 30.0,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Find runs left RUNNING by killed jobs, aliases on broken versions, aliases the ledger never recorded, and
    indexes that are unfinished, tampered with or not their version's."""

    def job(settings: Settings) -> DoctorReport:
        from monitoring.retention import retention_findings
        from registry.access import resolve_actor
        from registry.doctor import examine
        from registry.indexes import roots_of
        from registry.ledger import Ledger

        report = examine(
            Ledger(settings.ledger_url),
            models=model,
            stale_hours=stale_hours,
            fix=fix,
            actor=resolve_actor(settings.tracking_uri, actor_name),
            index_roots=roots_of(settings),
        )
        return report.with_findings(retention_findings(settings.cache_dir, settings.shadow_report_dir, retention_days))

    def render(result: DoctorReport, settings: Settings) -> None:
        for f in result.findings:
            state = "fixed" if f.fixed else ("fixable" if f.fixable else "needs a person")
            typer.echo(f"{f.kind:28s} {f.subject:40s} {state:15s} {f.detail}")
        typer.echo(
            f"{'clean' if result.clean else 'problems'}: {len(result.findings)} found, "
            f"{result.fixed} fixed, {result.remaining} remaining ({len(result.models)} models checked)"
            + ("" if fix or result.clean else "; --fix repairs what is safe")
        )

    run_job(
        job,
        render,
        as_json=as_json,
        debug=debug,
        exit_code=lambda r: ExitCode.DONE if r.clean else ExitCode.DOCTOR_PROBLEMS,
    )


traffic_app = typer.Typer(no_args_is_help=True, help="Stored live-traffic data: retention.")
app.add_typer(traffic_app, name="traffic", rich_help_panel="Automation")


@traffic_app.command("purge")
def traffic_purge(
    older_than: Annotated[str, opt("Purge traffic data older than this: 30d, 12h, 2w.", "--older-than")] = "30d",
    dry_run: Annotated[bool, opt("Say what would go; remove nothing, record nothing.", "--dry-run")] = False,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Remove cached traffic vectors, drift and shadow runs' traffic artifacts and shadow reports older than
    the limit (runs, scores and the ledger stay); each purge is recorded in the ledger."""
    from monitoring.retention import parse_age

    try:
        days = parse_age(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None

    def job(settings: Settings) -> PurgeResult:
        from monitoring.retention import purge_traffic
        from registry.access import resolve_actor
        from registry.ledger import Ledger

        return purge_traffic(
            days=days,
            cache_dir=settings.cache_dir,
            report_dir=settings.shadow_report_dir,
            ledger=Ledger(settings.ledger_url),
            actor=resolve_actor(settings.tracking_uri, actor_name),
            dry_run=dry_run,
        )

    def render(result: PurgeResult, settings: Settings) -> None:
        from monitoring.retention import KIND_LABELS

        verb = "would remove" if result.dry_run else "removed"
        counts = ", ".join(f"{result.removed.get(k, 0)} {label}" for k, label in KIND_LABELS.items())
        typer.echo(f"{verb}: {counts} ({result.bytes / 1e6:.1f} MB) older than {result.cutoff}")
        for item in result.items[:20]:
            typer.echo(f"  {item.kind:14s} {item.oldest[:19]}  {item.ref}")
        if len(result.items) > 20:
            typer.echo(f"  ... and {len(result.items) - 20} more (--json lists all)")
        typer.echo("dry run: nothing removed or recorded" if result.dry_run else "recorded in the ledger")

    run_job(job, render, as_json=as_json, debug=debug, reads_only=dry_run)
