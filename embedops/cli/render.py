"""How results read in a terminal: the tables and lines commands print when --json is not given."""

from __future__ import annotations

from typing import Any

import typer

from embedops.core.settings import Settings


def format_metrics(
    metrics: dict[str, float], names: tuple[str, ...] = ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_100")
) -> str:
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
            typer.echo("  note   the vector index must be rebuilt (dimension or tokenizer changed)")
        typer.echo(
            f"report    decision run {payload['decision_run_id']} (artifacts gate/report.html, gate/decision.json)"
        )


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
