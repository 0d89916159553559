"""The one error hierarchy of embedops.

It lives in the bottom layer (evaluation imports nothing else of ours) so that every package can
raise these. The CLI turns any ``EmbedopsError`` into a one-line message and exit code 1.
"""

from __future__ import annotations


class EmbedopsError(Exception):
    """Root of every error embedops raises on purpose; the message says what to fix."""


class ConfigError(EmbedopsError):
    """A configuration file or flag is invalid."""


class InvalidNameError(ConfigError):
    """A model, alias or experiment name that could escape its folder or confuse a store."""


class DataError(EmbedopsError):
    """A data file cannot be used; names the file and, where known, the row and field."""

    def __init__(
        self, message: str, *, path: str | None = None, row: int | None = None, field: str | None = None
    ) -> None:
        where = ", ".join(
            part
            for part in (
                path and f"file {path}",
                row is not None and f"row {row}",
                field and f"field '{field}'",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.path, self.row, self.field = path, row, field


class GoldenSetError(DataError):
    """A golden set (BEIR folder) is missing a file, malformed or inconsistent."""


class ModelError(EmbedopsError):
    """A model cannot be found, loaded safely, or produces unusable vectors."""


class ServiceUnavailableError(EmbedopsError):
    """A service the job needs (the MLflow tracking server, a database) did not answer."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, systemd, Kubernetes) during a tracked run, raised as an interrupt.

    A KeyboardInterrupt, so everything that already handles Ctrl-C handles it the same way: the run
    lifecycle marks the run FAILED and registers nothing, and the CLI reports an interruption.
    """


class CorpusError(DataError):
    """A corpus file or change file cannot be used, or a corpus or its version does not exist."""


class VectorIndexError(EmbedopsError):
    """An index is missing, unfinished, tampered with, or was built by another model than the one asking."""
