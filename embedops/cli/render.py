"""How results read in a terminal: the tables and lines commands print when --json is not given."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import typer

from embedops.core.settings import Settings

if TYPE_CHECKING:
    from embedops.demo import DemoResult
    from embedops.status import StatusReport
    from training.job import TrainResult


def format_metrics(
    metrics: dict[str, float], names: tuple[str, ...] = ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_100")
) -> str:
    return "  ".join(f"{n} {metrics[n]:.4f}" for n in names if n in metrics)


def render_training(result: TrainResult, settings: Settings) -> None:
    train = result.train
    lines = [
        f"run       {result.run_id}",
        f"model     {result.model_uri}" + ("" if result.version else "  (not registered)"),
        f"data      {result.data['rows']} rows from {result.data['source']} (digest {result.data['digest'][:12]})",
        f"training  {int(train['train_steps'])} steps in {train['train_seconds']:.1f} s "
        f"({train['train_pairs_per_second']:.1f} pairs/s), final loss {train['train_loss']:.4f}",
    ]
    if result.base_metrics:
        lines.append(f"base      {format_metrics(result.base_metrics)}")
    if result.metrics:
        lines.append(f"golden    {format_metrics(result.metrics)}")
    lines.append(f"browse    {settings.ui_command()}")
    typer.echo("\n".join(lines))


def render_decision(payload: dict[str, Any]) -> None:
    decision = payload.get("decision")
    if decision:
        typer.echo(
            f"gate      {payload['model']} v{decision['candidate_version']} vs production "
            f"v{decision['production_version']}: {decision['verdict'].upper()}"
        )
        for check in decision["checks"]:
            mark = "waived" if check["waived"] else ("ok" if check["passed"] else "FAIL")
            typer.echo(f"  {mark:6s} {check['name']:24s} {check['detail']}")
        if decision["reindex_required"]:
            typer.echo("  note   new weights: each corpus is searched with this version's own index, never another's")
        for line in payload.get("indexes") or []:
            typer.echo(f"index     {line}")
        if payload.get("decision_run_id"):
            typer.echo(
                f"report    decision run {payload['decision_run_id']} (artifacts gate/report.html, gate/decision.json)"
            )


def render_demo(demo: DemoResult, settings: Settings) -> None:
    result = demo.to_dict()
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
        ends = ["v" + v if v else "-" for v in (move["from_version"], move["to_version"])]
        versions = f"{ends[0]} -> {ends[1]}"
        typer.echo(
            f"  {move['ts'][:19]}  {move['action']:9s} {move['alias']:10s} {versions:9s} "
            f"{move['outcome']:8s} {move['actor']}: {move['reason']}"
        )
    typer.echo("\nHTML reports:")
    for number, step in enumerate(result["steps"], start=1):
        if step["report"]:
            typer.echo(f"  step {number}: {step['report']}")
    if result.get("retrain_report"):
        typer.echo(f"  step 5, gate of the retrained model: {result['retrain_report']}")
    failed = [s["title"] for s in result["steps"] if not s["ok"]]
    typer.echo(
        f"\n{'every step as expected' if not failed else 'UNEXPECTED: ' + '; '.join(failed)} "
        f"in {result['seconds'] / 60:.1f} min"
    )
    typer.echo(f"browse    {settings.ui_command()}")
    # Every later command finds the demo's store through this one variable.
    typer.echo(
        "\nnext, point this shell at the demo's store:\n"
        f"  unset MLFLOW_TRACKING_URI; export EMBEDOPS_HOME={shlex.quote(demo.home)}"
    )
    typer.echo(f"  embedops status\n  embedops models {demo.model}\n  embedops history {demo.model}")


def render_status(report: StatusReport, settings: Settings) -> None:
    typer.echo(f"store     {report.store}\n          chosen by {report.chosen_by}; ledger {report.ledger}")
    if not report.models:
        typer.echo("models    none registered in this store")
    for model in report.models:
        typer.echo(f"\n{model.model}")
        for a in model.aliases:
            if a.version is None:
                typer.echo(f"  {a.alias:10s} -")
                continue
            gate = f"gate {a.gate_verdict}" if a.gate_verdict else "never gated"
            golden = f" on {a.golden} [{a.golden_split}]" if a.golden else ""
            score = f", ndcg@10 {a.ndcg_at_10:.4f}" if a.ndcg_at_10 is not None else ""
            typer.echo(f"  {a.alias:10s} v{a.version}  {gate}{golden}{score}")
        d = model.drift
        if d is None:
            typer.echo("  drift      no window scored yet")
        else:
            verdict = "DRIFT" if d.drifted else "no drift"
            span = f" (traffic {d.window_start} to {d.window_end})" if d.window_start else ""
            typer.echo(
                f"  drift      {d.at}{span}: score {d.score:.3f} ({verdict}) on v{d.version}; {d.action}: {d.reason}"
            )
        r = model.retrain
        lines = [f"last {r.last_retrain_at or 'never'}"]
        if r.cooldown_until:
            lines.append(f"cooldown until {r.cooldown_until}")
        lines.append(f"running ({r.lease_holder} until {r.lease_expires})" if r.running else "idle")
        breaker = (
            f"OPEN after {r.failures} failures: {r.breaker_hint}"
            if r.breaker_open
            else f"closed ({r.failures} failures)"
        )
        typer.echo(f"  retrain    {'; '.join(lines)}\n  breaker    {breaker}")
        f = model.last_failure
        if f is not None:
            typer.echo(
                f"  failure    {f.at} {f.action} {f.outcome}: {f.reason}" + (f" ({f.detail[:200]})" if f.detail else "")
            )
