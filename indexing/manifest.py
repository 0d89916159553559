"""What an index is and how it came to be: the manifest, one JSON file per index, written by rename.

The manifest is the index's identity (which model weights, which corpus version), its state
(``building`` until every chunk is in and verification passed, then ``verified``; ``failed`` with
the reason) and its evidence (rows, build time, ANN recall, the sha256 of every file). The registry
logs a copy to MLflow; this file is what search and serving read, without a tracking server.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from embedops.core.errors import VectorIndexError
from embedops.core.files import write_text_atomically
from embedops.core.names import validate_name

State = Literal["building", "verified", "failed"]


@dataclass(frozen=True)
class ModelIdentity:
    """The model version an index belongs to, from its contract: what must match for a search to be honest."""

    name: str
    version: str
    weights_digest: str
    tokenizer_sha256: str
    dimension: int
    normalize: bool
    similarity: str
    max_seq_length: int

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def index_id(model: str, version: str, corpus: str) -> str:
    return f"{validate_name(model)}-v{version}-{validate_name(corpus, 'corpus name')}"


@dataclass(frozen=True)
class IndexManifest:
    index_id: str
    model: ModelIdentity
    corpus: str
    corpus_version: int
    corpus_digest: str
    rows: int
    state: State
    chunk_size: int
    chunks: int
    chunks_done: int = 0
    precision: str = "fp32"
    started: str = ""
    build_seconds: float = 0.0  # encoding and writing, over every attempt
    attempts: int = 0
    resumed_chunks: int = 0  # chunks found committed when the last attempt started
    docs_per_s: float | None = None
    ann: dict[str, Any] | None = None  # type and parameters; None: exact search
    ann_recall_at_10: float | None = None
    table_version: int | None = None  # the LanceDB version that was verified: what search reads
    files: dict[str, str] = field(default_factory=dict)
    verified_at: str | None = None
    error: str | None = None
    # One entry per sync to a newer corpus version: from, to, upserts, deletes, seconds, lag_before_s, at.
    syncs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def evolve(self, **changes: Any) -> IndexManifest:
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexManifest:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["model"] = ModelIdentity(**values["model"])
        return cls(**values)


def manifest_path(root: Path, index: str) -> Path:
    return root / "manifests" / f"{index}.json"


def read_manifest(root: Path, index: str) -> IndexManifest | None:
    path = manifest_path(root, index)
    if not path.is_file():
        return None
    try:
        return IndexManifest.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise VectorIndexError(f"the manifest of index {index} is unreadable ({exc}): {path}") from None


def write_manifest(root: Path, manifest: IndexManifest) -> IndexManifest:
    path = manifest_path(root, manifest.index_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(manifest.to_dict(), indent=1))
    return manifest


def all_manifests(root: Path) -> list[IndexManifest]:
    folder = root / "manifests"
    if not folder.is_dir():
        return []
    found = (read_manifest(root, p.stem) for p in sorted(folder.glob("*.json")))
    return [m for m in found if m is not None]


def drop(root: Path, index: str) -> None:
    """Remove an index: its manifest first (nothing finds it any more), then its table."""
    from indexing import lance

    manifest_path(root, index).unlink(missing_ok=True)
    lance.drop(root, index)
