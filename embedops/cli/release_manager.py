"""Commands for release managers: register, models, promote, rollback, history, serve."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from embedops.cli.common import (
    ActorOpt,
    DebugOpt,
    JsonOpt,
    app,
    opt,
    parse_time,
    registry_context,
    run_job,
)
from embedops.cli.render import format_metrics, render_decision
from embedops.core.settings import Settings
from evaluation.golden import DEFAULT_SPLIT


@app.command(rich_help_panel="Release managers")
def register(
    path: Annotated[
        str,
        typer.Argument(
            help="A sentence-transformers folder with safetensors weights, or a "
            "logged model: runs:/RUN_ID/model (a `train --no-register` run)."
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

    def job(settings: Settings) -> dict[str, Any]:
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

    def render(result: dict[str, Any], settings: Settings) -> None:
        typer.echo(f"registered {result['model_uri']} (run {result['run_id']})")
        if result["metrics"]:
            typer.echo(f"golden     {format_metrics(result['metrics'])}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
def models(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List a model's versions with their aliases, key metrics and gate verdicts."""

    def job(settings: Settings) -> dict[str, Any]:
        from registry.store import list_versions

        return {
            "model": name,
            "versions": [
                {
                    "version": v.version,
                    "aliases": v.aliases,
                    "ndcg_at_10": v.tags.get("ndcg_at_10"),
                    "recall_at_10": v.tags.get("recall_at_10"),
                    "gate_verdict": v.tags.get("gate_verdict"),
                    "embedding_dim": v.tags.get("embedding_dim"),
                    "run_id": v.run_id,
                    "created": v.created,
                }
                for v in list_versions(name)
            ],
        }

    def render(result: dict[str, Any], settings: Settings) -> None:
        typer.echo(f"{'version':>7s}  {'aliases':24s} {'ndcg@10':>8s} {'recall@10':>9s}  {'gate':8s} run")
        for v in result["versions"]:
            typer.echo(
                f"{v['version']:>7s}  {','.join(v['aliases']) or '-':24s} {v['ndcg_at_10'] or '-':>8.8s} "
                f"{v['recall_at_10'] or '-':>9.9s}  {v['gate_verdict'] or '-':8s} {v['run_id']}"
            )

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
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
        bool,
        opt(
            "With --skip-gate: allow a version whose vectors differ in kind from production's "
            "(dimension, tokenizer, normalization, similarity); every index must be rebuilt.",
            "--allow-reindex",
        ),
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
        )

    def render(result: dict[str, Any], settings: Settings) -> None:
        render_decision(result)
        if "candidate" in result:
            typer.echo(
                f"candidate  {result['model']} is now v{result['candidate']}; production stays v{result['production']}"
            )
            return
        was = f"v{result['previous_production']}" if result["previous_production"] else "nothing"
        typer.echo(f"production {result['model']} is now v{result['production']} (was {was})")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
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
        typer.echo(
            f"production {result['model']} is now v{result['production']} (was v{result['previous_production']})"
        )

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
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
        typer.echo(
            f"{'time (UTC)':24s} {'actor':{width}s} {'action':9s} {'alias':10s} {'from':>5s} {'to':>5s} "
            f"{'outcome':9s} reason"
        )
        for m in result["moves"]:
            typer.echo(
                f"{m['ts']:24s} {m['actor']:{width}s} {m['action']:9s} {m['alias']:10s} "
                f"{m['from_version'] or '-':>5s} {m['to_version'] or '-':>5s} {m['outcome']:9s} "
                f"{m['reason']}" + (f" ({m['detail']})" if m["detail"] else "")
            )

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Release managers")
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
        return {
            "model": plan.model,
            "alias": plan.alias,
            "version": plan.version,
            "url": plan.url,
            "invocations": f"{plan.url}/invocations",
            "folder": str(plan.folder),
            "argv": plan.argv,
            "env": plan.env,
        }

    def render(result: dict[str, Any], settings: Settings) -> None:
        typer.echo(
            f"serving   {result['model']} v{result['version']} (alias {result['alias']}) at {result['invocations']}"
        )
        typer.echo(
            f"try       curl -s {result['invocations']} -H 'Content-Type: application/json' "
            '-d \'{"inputs": ["how do I pause Clockwork?"]}\''
        )

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
