"""Names that end up in stores and paths: registered models, aliases, experiments."""

from __future__ import annotations

import re

from embedops.core.errors import InvalidNameError

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_name(name: object, what: str = "model name") -> str:
    """Return ``name`` if it is safe as a registry key and a path component, else raise.

    Letters, digits, '.', '_' and '-', starting with a letter or digit, no '..', at most 64
    characters: nothing that could climb out of a folder, hide a NUL or confuse a URI.
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"{what} must be a non-empty string")
    shown = name.encode("unicode_escape").decode("ascii")[:80]
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"{what} '{shown}' is longer than {MAX_NAME_LENGTH} characters")
    if ".." in name or not _NAME.fullmatch(name):  # fullmatch: "$" would let a trailing newline in
        raise InvalidNameError(
            f"{what} '{shown}' may use only letters, digits, '.', '_' and '-', start with a letter "
            "or digit, and not contain '..'"
        )
    return name


_VERSION = re.compile(r"[0-9]{1,9}")


def parse_version(version: object) -> str:
    """A registry version in its one spelling: ``02``, ``2`` and ``v2`` are all version 2 (``"2"``).

    Versions are compared as these strings everywhere, so ``02`` can never look different from ``2``."""
    text = str(version).strip().removeprefix("v")
    if not _VERSION.fullmatch(text) or int(text) == 0:
        shown = str(version).encode("unicode_escape").decode("ascii")[:40]
        raise InvalidNameError(f"version '{shown}' is not a version number (1, 2, ...)")
    return str(int(text))


# Run tags that retention reads (monitoring.retention): the oldest query a drift or shadow run's artifacts
# hold, the local copy of a shadow report, and when a run's traffic artifacts were purged.
TRAFFIC_OLDEST_TAG = "embedops.traffic_oldest"
REPORT_FILE_TAG = "embedops.report_file"
PURGED_TAG = "embedops.purged"
