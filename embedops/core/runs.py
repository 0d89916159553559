"""The run lifecycle every job shares: experiments, a tracked run that always ends, SIGTERM as an interrupt."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from embedops.core.errors import ServiceUnavailableError, Terminated

if TYPE_CHECKING:
    from mlflow import ActiveRun


def ensure_experiment(name: str, artifact_root: str | None) -> str:
    """The experiment's id, creating it with artifacts under ``artifact_root`` when given.

    With the embedded sqlite store MLflow would otherwise put artifacts in ./mlruns of whatever
    folder the job happened to start in.
    """
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception:
        # Two jobs on a new store (two release managers' gates) both found no experiment and both
        # created it: the store refused the slower one. Its experiment exists now; anything else re-raises.
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


# How long a failed job waits for a tracking server that went away to come back, so it can mark its
# run FAILED (a restart by systemd or Kubernetes takes seconds); after that `embedops doctor --fix` does.
GRACE_ENV = "EMBEDOPS_TRACKING_GRACE_S"


@contextlib.contextmanager
def tracked_run(*, notify: Any = None, **start_run_args: Any) -> Iterator[ActiveRun]:
    """``mlflow.start_run`` for jobs that must not leave a run RUNNING when they fail.

    MLflow's own context manager ends a failed run with one request; if the tracking server died
    mid-run that request fails too and the run stays RUNNING forever. Here a failed job keeps
    trying to mark its run FAILED for a grace period, then says what state it left behind.
    SIGTERM is turned into an interrupt for the run's lifetime, so a killed job ends it FAILED as
    Ctrl-C does, instead of dying with the run RUNNING.
    """
    import mlflow

    with sigterm_interrupts():
        try:
            run = mlflow.start_run(**start_run_args)
        except BaseException:
            # Interrupted after the run was created but before it was handed back: end it too.
            if (active := mlflow.active_run()) is not None:
                mark_failed(active.info.run_id, notify=notify)
            raise
        try:
            yield run
        except BaseException as exc:
            marked = mark_failed(run.info.run_id, notify=notify)
            if not marked or _server_lost(exc):
                state = (
                    "was marked FAILED once it came back"
                    if marked
                    else "is still RUNNING: `embedops doctor --fix` marks it FAILED once the server is back"
                )
                raise ServiceUnavailableError(
                    f"the MLflow tracking server stopped answering during run {run.info.run_id}: the job stopped, "
                    f"nothing was registered, and the run {state}"
                ) from exc
            raise
        else:
            mlflow.end_run()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, the first SIGTERM raises ``Terminated``; later ones are ignored so they cannot
    cut short the marking of the run FAILED (bounded by the grace period; SIGKILL still works).
    The previous handler comes back afterwards. Python runs handlers only in the main thread, so
    elsewhere (a tuning worker thread) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def interrupt(signum: int, frame: Any) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated(f"stopped by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        # None: a handler installed outside Python, which signal() cannot reinstate; the default is closest.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _server_lost(exc: BaseException) -> bool:
    """Did the job fail because the tracking server could not be reached (not because of its input)?"""
    from mlflow.exceptions import MlflowException

    text = str(exc)
    signs = ("Max retries exceeded", "Connection refused", "ConnectionError", "Failed to establish")
    return isinstance(exc, (MlflowException, OSError)) and any(sign in text for sign in signs)


def mark_failed(run_id: str, *, notify: Any = None) -> bool:
    """Set the run FAILED, retrying while the server is away; True once it is recorded."""
    import mlflow
    from mlflow.tracking import MlflowClient

    grace = float(os.environ.get(GRACE_ENV, "60"))
    deadline = time.monotonic() + grace
    try:
        while True:
            try:
                MlflowClient().set_terminated(run_id, "FAILED")
                return True
            except Exception:
                if time.monotonic() > deadline:
                    return False
                if notify:  # once, on the first failure
                    notify(
                        f"the tracking server is not answering; waiting up to {grace:g} s to mark run {run_id} FAILED"
                    )
                    notify = None
                time.sleep(2)
    finally:
        with contextlib.suppress(Exception):  # drop the run from this process's stack, server or not
            mlflow.end_run("FAILED")
