"""The one check every loader of user text runs: is this text valid Unicode?

A JSON or YAML escape such as ``"\\ud800"`` decodes to a lone surrogate: Python strings hold it,
but UTF-8 cannot encode it, so it passes every loader and crashes much later, inside a tokenizer
or a digest, with a ``UnicodeEncodeError`` that names neither the file nor the row.
"""

from __future__ import annotations

from embedops.core.errors import DataError


def unicode_problem(value: str) -> str | None:
    """What makes ``value`` invalid Unicode, or None when UTF-8 can encode it."""
    if value.isascii():  # nearly every text: skip the encode
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"invalid Unicode: lone surrogate U+{ord(value[exc.start]):04X} at character {exc.start + 1} "
            "(an escaped \\ud800-\\udfff code point without its pair); fix or drop this text"
        )
    return None


def check_text(value: str, *, path: str, row: int | None, field: str, error: type[DataError] = DataError) -> str:
    """``value`` unchanged, or ``error`` naming the file, row and field of the invalid text."""
    problem = unicode_problem(value)
    if problem:
        raise error(problem, path=path, row=row, field=field)
    return value


def redaction_sentence(found: dict[str, int]) -> str:
    """ "personal data redacted before use: 3 email, 1 phone in 4 texts (0 dropped)" """
    kinds = [f"{n} {kind}" for kind, n in found.items() if kind not in ("texts", "dropped") and n]
    if not kinds:
        return "no personal data found in the texts (e-mail, phone, card, IBAN, IP and custom patterns)"
    return (
        f"personal data redacted before use: {', '.join(kinds)} in {found.get('texts', 0)} texts "
        f"({found.get('dropped', 0)} dropped)"
    )
