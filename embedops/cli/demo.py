"""`embedops demo`: the whole lifecycle on the bundled help center, in a home of its own."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from embedops.cli.common import (
    EXAMPLES,
    DebugOpt,
    ExitCode,
    JsonOpt,
    app,
    opt,
    run_job,
)
from embedops.cli.render import render_demo
from embedops.core.settings import Settings

if TYPE_CHECKING:
    from embedops.demo import DemoResult


@app.command(rich_help_panel="Try it")
def demo(
    home: Annotated[Path, opt("Fresh EMBEDOPS_HOME for the demo (an earlier demo's home is replaced).")] = Path(
        "demo-home"
    ),
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
        raise typer.Exit(ExitCode.ERROR) from None
    # Under `mlflow run` these name the project's store and run; the demo keeps to its own home.
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        os.environ.pop(key, None)

    def job(settings: Settings) -> DemoResult:
        from embedops.demo import run_demo
        from training.job import say

        # The trainer prints its log lines: keep stdout for the summary.
        with contextlib.redirect_stdout(sys.stderr):
            return run_demo(settings, EXAMPLES, notify=say)

    run_job(
        job, render_demo, as_json=as_json, debug=debug, exit_code=lambda r: ExitCode.DONE if r.ok else ExitCode.ERROR
    )
