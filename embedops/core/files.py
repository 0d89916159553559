"""Reading and fingerprinting files: JSONL with errors that name the file and line, sha256 in blocks.

Golden sets, training data and traffic windows are all JSONL; model folders and cache entries are
hashed file by file. Each has one spelling here, in the bottom layer, so every package reads alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from embedops.core.errors import DataError

BLOCK = 1 << 22  # 4 MiB: files are hashed in blocks of this size, never read whole
UTF8_BOM = b"\xef\xbb\xbf"


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


def update_from_file(h: Hasher, path: Path) -> None:
    """Feed the bytes of ``path`` into ``h`` (a hashlib object), block by block."""
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            h.update(block)


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of the bytes of ``path``."""
    h = hashlib.sha256()
    update_from_file(h, path)
    return h.hexdigest()


def jsonl_objects(
    lines: Iterable[bytes], *, path: str | Path, error: type[DataError] = DataError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of JSONL, given as a binary file yields its lines
    (split at ``\\n``; a ``\\r`` before it is JSON whitespace). A UTF-8 byte order mark at the start is
    ignored. Text that is not UTF-8, not JSON or not a JSON object is an ``error`` naming ``path`` and the
    1-based line number."""
    for lineno, line in enumerate(lines, start=1):
        if lineno == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM) :]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(
                f"not UTF-8 text (byte 0x{line[exc.start]:02x}) at byte offset {exc.start} of the line: "
                f"{exc.reason}; re-save the file as UTF-8",
                path=str(path),
                row=lineno,
            ) from None
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"not valid JSON ({exc.msg})", path=str(path), row=lineno) from None
        if not isinstance(obj, dict):
            raise error(f"expected a JSON object per line, got {type(obj).__name__}", path=str(path), row=lineno)
        yield lineno, obj


def read_jsonl(path: Path, *, error: type[DataError] = DataError) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`jsonl_objects` over the file at ``path``, read line by line (a large file is never held
    whole); a missing or unreadable file is an ``error`` too."""
    if not path.is_file():
        raise error("file not found", path=str(path))
    try:
        with open(path, "rb") as fh:
            yield from jsonl_objects(fh, path=path, error=error)
    except OSError as exc:  # opening or reading (what the caller raises between lines never arrives here)
        raise error(f"cannot read ({exc.strerror})", path=str(path)) from None


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename. The temporary file's name is unique, so two
    processes writing the same path at once each rename their own whole file (the last one wins)
    instead of one renaming the other's away."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
