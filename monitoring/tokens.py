"""Tokenizer-level signals: how often the vocabulary fails and how often texts are cut off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TokenSignals:
    unknown_token_rate: float  # share of (non-special) tokens that are the unknown token
    truncation_rate: float  # share of texts longer than max_seq_length tokens

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def token_signals(tokenizer: Any, texts: Sequence[str], max_seq_length: int) -> TokenSignals:
    if not texts:
        return TokenSignals(0.0, 0.0)
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    unk = tokenizer.unk_token_id
    special = set(tokenizer.all_special_ids)
    total = unknown = truncated = 0
    for ids in encoded:
        truncated += len(ids) > max_seq_length
        for token in ids:
            if token in special and token != unk:
                continue
            total += 1
            unknown += token == unk
    return TokenSignals(unknown / total if total else 0.0, truncated / len(encoded))
