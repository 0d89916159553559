"""Personal data out of live queries before anything embeds, caches, logs or reports them.

Every traffic reader (drift windows, shadow comparisons) passes its texts through a :class:`Redactor`.
Detectors find candidates with a regex and keep only those a maintained validator accepts, so an
order number or a 16-digit reference that fails the Luhn check stays as typed:

==========  ==============================================  ===============================================
detector    found by                                        validated by
==========  ==============================================  ===============================================
email       regex (local@domain.tld)                        regex only: any well-formed address counts
phone       ``phonenumbers.PhoneNumberMatcher`` per region  ``phonenumbers``: a number valid in its region
card        regex (13-19 digits, spaces or dashes, 2-6 first)  ``stdnum.luhn`` (the check digit)
iban        regex (country, check digits, 4-char groups)    ``stdnum.iban`` (country length and mod-97)
ip          regex (dotted quad; colon-separated hex)        ``ipaddress`` (a parseable v4 or v6 address)
custom      the regexes in the config                       regex only
==========  ==============================================  ===============================================

Each detector has a mode: ``mask`` (``<EMAIL>``), ``hash`` (``<EMAIL#3f9a1c0b27de>``: a keyed HMAC, so
the same address counts as the same without being readable; the key is ``EMBEDOPS_REDACTION_KEY``),
``drop`` (the whole text is left out) or ``off``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from embedops.core.errors import ConfigError

Mode = Literal["mask", "hash", "drop", "off"]
KEY_ENV = "EMBEDOPS_REDACTION_KEY"
BUILT_IN = ("email", "iban", "card", "ip", "phone")  # the order they claim text in

EMAIL = re.compile(
    r"(?<![\w.+-])[\w.!#$%&'*+/=?^`{|}~-]+"  # the local part: RFC 5322's atoms
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
CARD = re.compile(r"(?<![\d.,+-])\d(?:[ -]?\d){12,18}(?![\d-])")  # after "+": a phone
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)")
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
# A text without a digit, an '@' or a ':' holds nothing a built-in detector finds: most queries skip them all.
ANY_CANDIDATE = re.compile(r"[\d@:]")
MIN_PHONE_DIGITS = 6
# Card networks' numbers start with 2-6 (Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Discover/UnionPay 6): a
# Luhn-valid run starting otherwise is far likelier a reference number (UATP's 1 is the rare miss).
CARD_FIRST_DIGITS = "23456"


def _yaml_off(value: object) -> object:
    """YAML 1.1 reads a bare ``off`` as false: that is what the person wrote."""
    return "off" if value is False else value


class CustomPattern(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="lower_snake name: the mask is <NAME>")
    pattern: str = Field(description="a Python regex; every match is redacted")
    mode: Mode = "mask"

    _off = field_validator("mode", mode="before")(_yaml_off)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regex: {exc}") from None
        if compiled.match(""):
            raise ValueError("the regex matches the empty string, so it would redact nothing and everything")
        return value


class RedactionConfig(BaseModel):
    """What counts as personal data in live queries, and what becomes of it (the drift config's ``redaction:``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: Mode = "mask"
    phone: Mode = "mask"
    card: Mode = "mask"
    iban: Mode = "mask"
    ip: Mode = "mask"
    # National formats are read as these regions' numbers; international ones (+CC ...) are found whatever the list.
    phone_regions: list[str] = Field(default_factory=lambda: ["US"], min_length=1)
    custom: list[CustomPattern] = Field(default_factory=list)

    _off = field_validator(*BUILT_IN, mode="before")(_yaml_off)

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, value: list[str]) -> list[str]:
        import phonenumbers

        unknown = [r for r in value if r.upper() not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone regions {unknown}: use ISO 3166 codes such as US, GB, DE")
        return [r.upper() for r in value]

    def modes(self) -> dict[str, Mode]:
        built_in: dict[str, Mode] = {kind: getattr(self, kind) for kind in BUILT_IN}
        return built_in | {c.name: c.mode for c in self.custom}


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    value: str  # normalized: what the hash is taken over


@dataclass
class RedactionCounts:
    """Values redacted per type, and texts dropped, over one window."""

    found: Counter[str] = field(default_factory=Counter)
    texts_with_personal_data: int = 0
    dropped: int = 0

    def to_dict(self) -> dict[str, int]:
        found = {kind: self.found[kind] for kind in sorted(self.found)}
        return found | {"texts": self.texts_with_personal_data, "dropped": self.dropped}


def _emails(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), "email", m.group().lower()) for m in EMAIL.finditer(text)]


def _ibans(text: str) -> list[Span]:
    from stdnum import iban

    spans = []
    for match in IBAN.finditer(text):
        # The regex may run on into a following word ("... 0130 00 THANKS"): shorten it a group at a time.
        groups = match.group().split(" ")
        for end in range(len(groups), 0, -1):
            candidate = "".join(groups[:end]).upper()
            if len(candidate) >= 15 and iban.is_valid(candidate):
                length = len(" ".join(groups[:end]))
                spans.append(Span(match.start(), match.start() + length, "iban", candidate))
                break
    return spans


def _cards(text: str) -> list[Span]:
    from stdnum import luhn

    spans = []
    for match in CARD.finditer(text):
        # Digits typed in groups may run on into a neighbouring number ("... 1111 1111 2 items", "room 12
        # 4111 ..."): after the whole run, try it without trailing groups, then without leading ones.
        groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", match.group())]
        n = len(groups)
        runs = [(0, n), *((0, j) for j in range(n - 1, 0, -1)), *((i, n) for i in range(1, n))]
        for i, j in runs:
            start, end = match.start() + groups[i][0], match.start() + groups[j - 1][1]
            digits = re.sub(r"\D", "", text[start:end])
            if 13 <= len(digits) <= 19 and digits[0] in CARD_FIRST_DIGITS and luhn.is_valid(digits):
                spans.append(Span(start, end, "card", digits))
                break
    return spans


def _ips(text: str) -> list[Span]:
    spans = []
    for match in IPV4.finditer(text):
        with contextlib.suppress(ValueError):  # 999.1.1.1 and the like
            spans.append(Span(match.start(), match.end(), "ip", str(ipaddress.IPv4Address(match.group()))))
    if ":" in text:
        for match in IPV6.finditer(text):
            if not re.search(r"[0-9A-Fa-f]", match.group()):
                continue  # a bare "::" in prose
            with contextlib.suppress(ValueError):  # times (10:30:45), MAC-like runs
                spans.append(Span(match.start(), match.end(), "ip", str(ipaddress.IPv6Address(match.group()))))
    return spans


def _phones(text: str, regions: list[str]) -> list[Span]:
    import phonenumbers

    if sum(c.isdigit() for c in text) < MIN_PHONE_DIGITS:
        return []
    spans = []
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            spans.append(Span(match.start, match.end, "phone", e164))
    return spans


def claim(taken: list[Span], found: list[Span]) -> None:
    """Add the spans that overlap none already taken (a number two phone regions both match counts once)."""
    for span in found:
        if not any(span.start < t.end and t.start < span.end for t in taken):
            taken.append(span)


class Redactor:
    """Redacts texts; a window's counts go into the :class:`RedactionCounts` it is handed."""

    def __init__(self, config: RedactionConfig | None = None, *, key: bytes | None = None) -> None:
        self.config = config or RedactionConfig()
        self.modes = self.config.modes()
        if "hash" in self.modes.values():
            raw = key if key is not None else os.environ.get(KEY_ENV, "").encode()
            if len(raw) < 16:
                hashed = sorted(k for k, m in self.modes.items() if m == "hash")
                raise ConfigError(
                    f"redaction mode 'hash' ({', '.join(hashed)}) needs a secret key of at least 16 bytes in "
                    f"{KEY_ENV}: the same key keeps the same value countable across jobs; it is never logged"
                )
            self._key = raw
        self._custom = [(c.name, re.compile(c.pattern)) for c in self.config.custom if c.mode != "off"]
        regions = self.config.phone_regions
        finders: dict[str, Callable[[str], list[Span]]] = {
            "email": _emails,
            "iban": _ibans,
            "card": _cards,
            "ip": _ips,
            "phone": lambda text: _phones(text, regions),
        }
        self._finders = [finders[kind] for kind in BUILT_IN if self.modes[kind] != "off"]

    def find(self, text: str) -> list[Span]:
        """What a detector that is not ``off`` finds, each character claimed once, in the order of ``BUILT_IN``."""
        taken: list[Span] = []
        if ANY_CANDIDATE.search(text):
            for finder in self._finders:
                claim(taken, finder(text))
        for name, pattern in self._custom:
            claim(
                taken,
                [Span(m.start(), m.end(), name, m.group()) for m in pattern.finditer(text) if m.end() > m.start()],
            )
        return sorted(taken, key=lambda s: s.start)

    def token(self, span: Span) -> str:
        if self.modes[span.kind] == "hash":
            digest = hmac.new(self._key, f"{span.kind}:{span.value}".encode(), hashlib.sha256).hexdigest()
            return f"<{span.kind.upper()}#{digest[:12]}>"
        return f"<{span.kind.upper()}>"

    def redact(self, text: str, counts: RedactionCounts | None = None) -> str | None:
        """The text with every finding replaced, or None when a finding's mode is ``drop``."""
        spans = self.find(text)
        if not spans:
            return text
        counts = counts if counts is not None else RedactionCounts()
        counts.found.update(s.kind for s in spans)
        counts.texts_with_personal_data += 1
        if any(self.modes[s.kind] == "drop" for s in spans):
            counts.dropped += 1
            return None
        parts, at = [], 0
        for span in spans:
            parts += [text[at : span.start], self.token(span)]
            at = span.end
        return "".join(parts) + text[at:]

    def redact_all(self, texts: list[str]) -> tuple[list[str], RedactionCounts]:
        """The texts kept, redacted, in order, and what was found in them."""
        counts = RedactionCounts()
        kept = [r for r in (self.redact(t, counts) for t in texts) if r is not None]
        return kept, counts
