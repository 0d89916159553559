"""Commands for release managers: register, models, promote, rollback, history, serve."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from embedops.cli.common import (
    ActorOpt,
    DebugOpt,
    JsonOpt,
    app,
    opt,
    parse_time,
    run_job,
)
from embedops.cli.render import format_metrics, render_decision, render_status
from embedops.core.settings import Settings
from evaluation.golden import DEFAULT_SPLIT

if TYPE_CHECKING:
    from embedops.status import StatusReport
    from registry.compare import Comparison
    from registry.promotion import HistoryResult, MoveResult, RollbackResult
    from registry.register import Registered
    from registry.serve import ServePlan
    from registry.store import ModelListing


@app.command(rich_help_panel="Release managers")
def register(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="A sentence-transformers folder with safetensors weights, or a "
            "logged model: runs:/RUN_ID/model (a `train --no-register` run).",
        ),
    ],
    name: Annotated[str, opt("Registered model name.")],
    golden: Annotated[str | None, opt("BEIR folder: record the version's golden-set metrics.")] = None,
    golden_split: Annotated[str, opt("Split of the golden set.")] = DEFAULT_SPLIT,
    strip_remote_code: Annotated[
        bool,
        opt(
            "Drop auto_map entries and *.py files instead of refusing the folder (recorded on the "
            "version); embedops never runs a model's own code either way.",
            "--strip-remote-code",
        ),
    ] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Register an existing model folder (e.g. the base model) or a run's logged model, with its contract tags."""

    def job(settings: Settings) -> Registered:
        from registry.access import require_can_register
        from registry.register import register_folder

        require_can_register(settings.tracking_uri, name)

        return register_folder(
            path,
            name,
            golden=golden,
            golden_split=golden_split,
            artifact_root=settings.artifact_root,
            strip_remote_code=strip_remote_code,
        )

    def render(result: Registered, settings: Settings) -> None:
        typer.echo(f"registered {result.model_uri} (run {result.run_id})")
        if result.metrics:
            typer.echo(f"golden     {format_metrics(result.metrics)}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
def status(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Registered model name (default: every model).")
    ] = None,
    drift_config: Annotated[
        Path | None, opt("Drift config YAML whose trigger policy sets the cooldown shown (default: the default's).")
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Where things stand: the store in use, each model's aliases and gate verdicts, drift, retrain state, failures."""

    def job(settings: Settings) -> StatusReport:
        from embedops.status import status as read_status
        from monitoring.config import load_drift_config

        policy = load_drift_config(drift_config).trigger if drift_config else None
        return read_status(settings, [name] if name else None, policy)

    run_job(job, render_status, as_json=as_json, debug=debug, reads_only=True)


@app.command(rich_help_panel="Release managers")
def models(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List a model's versions with their aliases, key metrics and gate verdicts."""

    def job(settings: Settings) -> ModelListing:
        from registry.store import model_listing

        return model_listing(name)

    def render(result: ModelListing, settings: Settings) -> None:
        typer.echo(f"{'version':>7s}  {'aliases':24s} {'ndcg@10':>8s} {'recall@10':>9s}  {'gate':8s} run")
        for v in result.versions:
            ndcg = f"{v.ndcg_at_10:.6f}" if v.ndcg_at_10 is not None else "-"
            recall = f"{v.recall_at_10:.6f}" if v.recall_at_10 is not None else "-"
            typer.echo(
                f"{v.version:>7s}  {','.join(v.aliases) or '-':24s} {ndcg:>8s} {recall:>9s}  "
                f"{v.gate_verdict or '-':8s} {v.run_id}"
            )

    run_job(job, render, as_json=as_json, debug=debug, reads_only=True)


@app.command(rich_help_panel="Release managers")
def promote(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    version: Annotated[str, opt("The version to put in production: a number, or candidate / previous.")],
    golden: Annotated[
        str | None,
        opt("BEIR folder for the gate (default: the policy's golden:, else the set the version was gated on)."),
    ] = None,
    golden_split: Annotated[
        str | None, opt("Split of the golden set (default: the policy's, else the gated one's, else test).")
    ] = None,
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
        bool,
        opt(
            "With --skip-gate: allow a version whose vectors differ in kind from production's "
            "(dimension, tokenizer, normalization, similarity); every index must be rebuilt.",
            "--allow-reindex",
        ),
    ] = False,
    build_index: Annotated[
        bool,
        opt(
            "Build the version's index of each corpus production serves (after the gate passes) instead of "
            "refusing a version that has none.",
            "--build-index",
        ),
    ] = False,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Gate a version against production and, if it passes, make it production with its own indexes (exit 3 if
    rejected)."""

    def job(settings: Settings) -> MoveResult:
        from dataclasses import replace

        from embedops.pipelines import traffic_reader
        from registry.gate.policy import load_policy
        from registry.promotion import open_context
        from registry.promotion import promote as promote_version

        gate_policy = load_policy(policy)
        ctx = replace(open_context(settings, actor_name, gate_policy.release_managers), read_traffic=traffic_reader())
        return promote_version(
            ctx,
            name,
            version,
            policy=gate_policy,
            golden=golden,
            golden_split=golden_split,
            reason=reason,
            initial=initial,
            skip_gate=skip_gate,
            expected_production=expect_production,
            gate_only=gate_only,
            allow_reindex=allow_reindex,
            build_index=build_index,
            notify=lambda line: typer.echo(line, err=True),
        )

    def render(result: MoveResult, settings: Settings) -> None:
        render_decision(result.to_dict())
        if result.decision is None:  # no gate ran: render_decision said nothing of the indexes
            for line in result.indexes:
                typer.echo(f"index     {line}")
        if result.candidate is not None:
            typer.echo(f"candidate  {result.model} is now v{result.candidate}; production stays v{result.production}")
            return
        was = f"v{result.previous_production}" if result.previous_production else "nothing"
        typer.echo(f"production {result.model} is now v{result.production} (was {was})")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
def compare(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    baseline: Annotated[str, typer.Argument(metavar="A", help="The version to compare against: a number or an alias.")],
    version: Annotated[str, typer.Argument(metavar="B", help="The version judged against it: a number or an alias.")],
    golden: Annotated[
        str | None, opt("BEIR folder (default: the policy's golden:, else the set B was gated on).")
    ] = None,
    golden_split: Annotated[str | None, opt("Split of the golden set (default: as for promote).")] = None,
    policy: Annotated[Path | None, opt("Gate policy YAML whose checks are applied (default: the documented).")] = None,
    report_dir: Annotated[Path | None, opt("Folder for the HTML report (default: $EMBEDOPS_HOME/compare).")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Preview a gate: version B against version A on the golden set, with the report; records and moves nothing."""

    def job(settings: Settings) -> Comparison:
        from registry.access import resolve_actor
        from registry.compare import compare as compare_versions
        from registry.gate.policy import load_policy

        return compare_versions(
            name,
            baseline,
            version,
            policy=load_policy(policy),
            golden=golden,
            golden_split=golden_split,
            cache_dir=settings.cache_dir,
            report_dir=report_dir or settings.home / "compare",
            actor=resolve_actor(settings.tracking_uri, None),
            notify=lambda line: typer.echo(line, err=True),
        )

    def render(result: Comparison, settings: Settings) -> None:
        render_decision({"model": result.model, "decision": result.decision})
        typer.echo(f"\n{result.summary}\n")
        if result.changes:
            typer.echo(f"{'change':>7s}  query")
            for c in result.changes:
                typer.echo(f"{c['difference']:+7.3f}  {c['query']}")
        typer.echo(f"\nreport    {result.report}\nnothing was recorded or moved: `promote` runs the gate for real")

    run_job(job, render, as_json=as_json, debug=debug, reads_only=True)


@app.command(rich_help_panel="Release managers")
def rollback(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    reason: Annotated[str, opt("Why; recorded in the ledger.")],
    to_version: Annotated[str | None, opt("Roll back to this version instead of `previous`.")] = None,
    policy: Annotated[Path | None, opt("Policy file holding release_managers, if any.")] = None,
    actor_name: ActorOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Point production back at the previous version (or --to-version), which must still load."""

    def job(settings: Settings) -> RollbackResult:
        from registry.gate.policy import load_policy
        from registry.promotion import open_context
        from registry.promotion import rollback as rollback_model

        ctx = open_context(settings, actor_name, load_policy(policy).release_managers)
        return rollback_model(ctx, name, reason=reason, to_version=to_version)

    def render(result: RollbackResult, settings: Settings) -> None:
        for line in result.indexes:
            typer.echo(f"index     {line}")
        typer.echo(f"production {result.model} is now v{result.production} (was v{result.previous_production})")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
def history(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    at: Annotated[str | None, opt("ISO time: which version was production then.")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The audit ledger of a model's alias moves; with --at, what production was at that time."""

    def job(settings: Settings) -> HistoryResult:
        from registry.promotion import history as ledger_history
        from registry.promotion import open_context

        return ledger_history(open_context(settings, None, []), name, parse_time(at, "--at"))

    def render(result: HistoryResult, settings: Settings) -> None:
        if result.at is not None:
            version = result.production_at
            typer.echo(f"at {result.at.isoformat()} production was " + (f"v{version}" if version else "not set"))
            return
        width = max([5, *(len(m.actor) for m in result.moves)])
        typer.echo(
            f"{'time (UTC)':24s} {'actor':{width}s} {'action':9s} {'alias':10s} {'from':>5s} {'to':>5s} "
            f"{'outcome':9s} reason"
        )
        for row in result.to_dict()["moves"]:  # the JSON form: times as ISO text
            typer.echo(
                f"{row['ts']:24s} {row['actor']:{width}s} {row['action']:9s} {row['alias']:10s} "
                f"{row['from_version'] or '-':>5s} {row['to_version'] or '-':>5s} {row['outcome']:9s} "
                f"{row['reason']}" + (f" ({row['detail']})" if row["detail"] else "")
            )

    run_job(job, render, as_json=as_json, debug=debug, reads_only=True)


@app.command(rich_help_panel="Release managers")
def serve(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    alias: Annotated[str, opt("The alias whose version is served.")] = "production",
    host: Annotated[str, opt("Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, opt("Port to listen on.")] = 5001,
    workers: Annotated[int, opt("Scoring-server worker processes.")] = 1,
    corpus: Annotated[
        list[str] | None, opt("A corpus /search answers from (repeat; default: every one the version has an index of).")
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Serve the version behind an alias over HTTP: POST texts for vectors (MLflow's scoring server), POST
    queries to /search its own indexes; /health and /metrics (Prometheus).

    The version is verified against its registered manifest and loaded by embedops (never by
    MLflow's loader, never with remote code). The server follows the alias through the ledger: when
    it moves, the new version and its indexes replace the old ones together, without a restart.
    """

    def job(settings: Settings) -> ServePlan:
        from registry.serve import plan_serving

        return plan_serving(
            name, alias, copies=settings.home / "serving", host=host, port=port, workers=workers, corpora=corpus
        )

    def render(plan: ServePlan, settings: Settings) -> None:
        typer.echo(f"serving   {plan.model} v{plan.version} (alias {plan.alias}) at {plan.invocations}")
        typer.echo(
            f"try       curl -s {plan.invocations} -H 'Content-Type: application/json' "
            '-d \'{"inputs": ["how do I pause Clockwork?"]}\''
        )

    planned: list[ServePlan] = []

    def keep(plan: ServePlan, settings: Settings) -> None:
        planned.append(plan)
        if as_json:
            typer.echo(json.dumps(plan.to_dict()))
        else:
            render(plan, settings)

    # --json is printed by ``keep``: run_job's own --json mode would also send library output to stderr
    # for a job whose result is the server itself.
    run_job(job, keep, as_json=False, debug=debug, reads_only=True)
    sys.stdout.flush()
    # The server replaces this process: signals from systemd or Kubernetes reach it directly.
    (plan,) = planned
    os.execve(plan.argv[0], plan.argv, dict(os.environ) | plan.env)
