"""The ``embedops`` command: one subcommand per job, in one module per user group.

- ``common``: the app, shared options, the one job wrapper (``run_job``) and the exit codes (``ExitCode``);
- ``render``: what commands print without ``--json``;
- ``data_scientist`` (train, tune, evaluate), ``release_manager`` (register, models, promote, rollback,
  history, serve), ``automation`` (drift, retrain, doctor), ``demo``.

Every command takes ``--json`` (one JSON object on stdout, everything else on stderr) and
``--debug`` (full tracebacks). A new command goes in its user group's module; its job logic belongs
in the package below (training, registry, monitoring), not here.
"""

# isort: off
# Each module registers its commands; --help shows the groups in this order, as a model's life goes.
from embedops.cli import data_scientist, release_manager, search_indexes, automation, demo  # noqa: F401
from embedops.cli.common import ExitCode, app, main

# isort: on

__all__ = ["ExitCode", "app", "main"]
