"""The model contract: what a registered version promises, checkable from tags alone.

A serving index built with one version's vectors stays valid for another only if these agree:
dimension, normalization, similarity, and the tokenizer (a changed tokenizer changes every
vector). Tags are strings in MLflow, so values are stringified here, once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from embedops.core.files import file_sha256
from evaluation.cache import canonical_bytes

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Files whose content decides how text becomes token ids; other tokenizer files only repeat them.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "merges.txt",
    "vocab.json",
)


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


MANIFEST_FILE = "model_manifest.json"  # logged in the version's run
MANIFEST_TAG = "model_manifest_sha256"  # on the version, from its creation
# MLflow writes this beside MLmodel when a version is registered (its name and number), after the
# manifest was taken; nothing embedops loads or serves reads it.
WRITTEN_AT_REGISTRATION = frozenset({"registered_model_meta"})


def folder_manifest(folder: Path) -> dict[str, str]:
    """sha256 of every file of a logged model (MLmodel, environment files and the weights folder),
    by relative path: what a registered version must hold."""
    manifest = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.relative_to(folder).as_posix() in WRITTEN_AT_REGISTRATION:
            continue
        manifest[path.relative_to(folder).as_posix()] = file_sha256(path)
    return manifest


def manifest_digest(manifest: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def manifest_problems(expected: dict[str, str], folder: Path) -> list[str]:
    """What differs between a folder and its manifest: changed, missing and unexpected files."""
    actual = folder_manifest(folder)
    problems = [
        f"{name} changed since registration"
        for name in sorted(expected)
        if name in actual and actual[name] != expected[name]
    ]
    problems += [f"{name} is missing" for name in sorted(set(expected) - set(actual))]
    problems += [f"{name} was added" for name in sorted(set(actual) - set(expected))]
    return problems
