"""The model contract: what a registered version promises, checkable from tags alone.

A serving index built with one version's vectors stays valid for another only if these agree:
dimension, normalization, similarity, and the tokenizer (a changed tokenizer changes every
vector). Tags are strings in MLflow, so values are stringified here, once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.cache import canonical_bytes

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Files whose content decides how text becomes token ids; other tokenizer files only repeat them.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                   "sentencepiece.bpe.model", "spiece.model", "merges.txt", "vocab.json")


def save_tokenizer(model: SentenceTransformer, folder: Path) -> list[Path]:
    """Write the model's tokenizer files into ``folder`` and return those that fingerprint it."""
    folder.mkdir(parents=True, exist_ok=True)
    model.tokenizer.save_pretrained(str(folder))
    return sorted(p for p in folder.iterdir() if p.name in TOKENIZER_FILES)


def tokenizer_sha256(files: list[Path]) -> str:
    """sha256 over (name, content) of each file, in name order (tokenizer.json without runtime state)."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0" + canonical_bytes(path) + b"\0")
    return h.hexdigest()


def is_normalized(model: SentenceTransformer) -> bool:
    return any(type(module).__name__ == "Normalize" for module in model)


def contract_tags(model: SentenceTransformer, *, tokenizer_hash: str, base_model: str) -> dict[str, str]:
    return {
        "embedding_dim": str(model.get_embedding_dimension()),
        "normalize": str(is_normalized(model)).lower(),
        "similarity": str(model.similarity_fn_name or "cosine"),
        "max_seq_length": str(model.max_seq_length),
        "tokenizer_sha256": tokenizer_hash,
        "base_model": base_model,
    }
