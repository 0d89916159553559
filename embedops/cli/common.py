"""What every command shares: the app, the options, the one job wrapper, exit codes, the registry context."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar, get_args

import typer

from embedops.cli.render import render_decision
from embedops.core import progress
from embedops.core.settings import Settings, apply_offline_env, configure
from evaluation.precision import Precision
from training.config import LossName

apply_offline_env()  # before anything imports transformers or mlflow

app = typer.Typer(
    name="embedops",
    no_args_is_help=True,
    add_completion=True,  # --install-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
    help="MLOps for text-embedding models: fine-tune, evaluate, gate, promote, watch for drift.",
)


def show_version(value: bool) -> None:
    if value:
        from embedops import __version__

        typer.echo(f"embedops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=show_version, is_eager=True)
    ] = False,
) -> None:
    """MLOps for text-embedding models: fine-tune, evaluate, gate, promote, watch for drift."""


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout for scripts.", metavar="")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks and library logs.", metavar="")]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class ExitCode(IntEnum):
    """Every exit code of every command, in one place."""

    DONE = 0  # done; no drift
    ERROR = 1  # an error, said in one line on stderr
    USAGE = 2  # a flag or argument the parser refused
    GATE_REJECTED = 3  # the gate said no: production is unchanged
    DRIFT_FLAGGED = 4  # drift was flagged
    RETRAIN_FAILED = 5  # drift was flagged and the retrain it started failed (drift --json says why)
    DOCTOR_PROBLEMS = 6  # doctor found problems it did not (or could not) fix
    INTERRUPTED = 130  # Ctrl-C: the run is FAILED, nothing registered
    TERMINATED = 143  # SIGTERM: the same


class JobResult(Protocol):
    """What every job returns: a frozen dataclass whose ``to_dict`` is the command's ``--json``."""

    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=JobResult)


def run_job(
    job: Callable[[Settings], R],
    render: Callable[[R, Settings], None],
    *,
    as_json: bool,
    debug: bool,
    exit_code: Callable[[R], int] | None = None,
    reads_only: bool = False,
) -> None:
    """Run ``job`` with the store configured; map errors to one line and an exit code.

    ``reads_only``: the command only looks, so a home without a store is an error, not a new store."""
    from embedops.core.errors import EmbedopsError, Terminated
    from registry.promotion import GateRejected

    logging.basicConfig(level=logging.INFO if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        show_bars = debug or sys.stderr.isatty()
        progress.install(lambda line: typer.echo(line, err=True), bars=show_bars)
        if not show_bars:
            hide_library_bars()
        with progress.phase("opening the store"):
            quiet_libraries(debug)  # first: creating a new store logs MLflow's table migrations
            settings = configure(create=not reads_only)
        # Libraries that print (the trainer's loss lines) must not touch stdout: it holds the result.
        with contextlib.redirect_stdout(sys.stderr):
            result = job(settings)
    except GateRejected as exc:
        # A verdict, not a failure of the tool: the decision is still the job's output.
        if as_json:
            typer.echo(json.dumps(exc.payload, default=str))
        else:
            render_decision(exc.payload)
        typer.echo(f"rejected: {exc}", err=True)
        raise typer.Exit(ExitCode.GATE_REJECTED) from None
    except Terminated:
        typer.echo("terminated (SIGTERM): the run is marked FAILED and nothing was registered", err=True)
        raise typer.Exit(ExitCode.TERMINATED) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was registered", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except Exception as exc:  # not the two above: they are BaseExceptions
        if debug:
            raise
        if isinstance(exc, EmbedopsError):  # raised on purpose: its message says what to fix
            message = f"error: {exc}"
        else:
            message = f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
        typer.echo(message, err=True)
        raise typer.Exit(ExitCode.ERROR) from None
    finally:
        progress.install(None, bars=True)  # phase lines belong to this command only
    if int(os.environ.get("RANK", "0")) != 0:
        return  # a torchrun worker: rank 0 reports for the whole job
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
    else:
        render(result, settings)
    code = exit_code(result) if exit_code else 0
    if code:
        raise typer.Exit(code)


def hide_library_bars() -> None:
    """MLflow's "Downloading artifacts" and transformers' "Loading weights" bars: a log file gets phase lines."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when transformers is first imported
    if "transformers" in sys.modules:
        import transformers

        transformers.utils.logging.disable_progress_bar()


def quiet_libraries(debug: bool) -> None:
    """Library chatter (MLflow's table migrations, model-load reports) hides the lines that matter."""
    import mlflow  # noqa: F401  (it sets its loggers' levels when imported: set ours after)

    level = logging.INFO if debug else logging.ERROR
    for noisy in ("mlflow", "alembic", "transformers", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(level)


def opt(help_text: str, *names: str) -> Any:
    # No metavar: the help text says what a value is, and "<str>" beside every flag is noise.
    return typer.Option(*names, help=help_text, metavar="")


def choice_opt(help_text: str, choices: tuple[str, ...]) -> Any:
    """An option whose values come from the type the job uses: a typo is a usage error (exit 2) naming them."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"'{value}' is not one of {', '.join(choices)}")
        return value

    return typer.Option(help=f"{help_text} ({' | '.join(choices)})", callback=check, metavar="")


PRECISION_CHOICES = get_args(Precision)
LOSS_CHOICES = get_args(LossName)


ActorOpt = Annotated[str | None, opt("Who is acting (default: EMBEDOPS_ACTOR, else the OS user).", "--actor")]


def parse_time(value: str | None, flag: str) -> Any:
    from embedops.core.errors import ConfigError
    from embedops.core.times import parse_iso

    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise ConfigError(f"{flag} '{value}' is not an ISO time (e.g. 2026-11-26T14:05:00Z)") from None


def main() -> None:
    app()
