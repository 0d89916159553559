"""Corpus embeddings cached on disk, keyed by everything that decides them.

The key is (model weights digest, golden-set digest, max_seq_length, precision): the same key
means the same vectors, and anything that could change a vector changes the key. Each entry is
an ``.npy`` file plus a JSON sidecar holding the key and the file's sha256; an entry that fails
any check (truncated, edited, wrong shape, NaN) is treated as absent and rewritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embedops.core.files import file_sha256, update_from_file, write_text_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    model_digest: str
    golden_digest: str
    max_seq_length: int
    precision: str

    @property
    def name(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]


# Runtime state a fast tokenizer writes into tokenizer.json once it has encoded something; it does
# not change how text becomes ids (truncation length is max_seq_length, part of every cache key).
RUNTIME_TOKENIZER_KEYS = ("truncation", "padding")
# Call-time settings that transformers writes into tokenizer_config.json once a tokenizer has been
# used (a trained or reloaded model has them, the same model fresh from its folder not), with the
# values that change nothing. max_length is the model's max_seq_length, which the contract tracks.
RUNTIME_CONFIG_DEFAULTS: dict[str, object] = {
    "stride": 0,
    "pad_to_multiple_of": None,
    "pad_token_type_id": 0,
    "padding_side": "right",
    "truncation_side": "right",
    "truncation_strategy": "longest_first",
}


def canonical_bytes(path: Path) -> bytes:
    """A file's bytes, except tokenizer files without their runtime state, so identical models hash alike."""
    raw = path.read_bytes()
    if path.name not in ("tokenizer.json", "tokenizer_config.json"):
        return raw
    try:
        content = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw
    if not isinstance(content, dict):
        return raw
    if path.name == "tokenizer.json":
        for key in RUNTIME_TOKENIZER_KEYS:
            content.pop(key, None)
    else:
        content.pop("max_length", None)
        for key, default in RUNTIME_CONFIG_DEFAULTS.items():
            if key in content and content[key] == default:
                del content[key]
    return json.dumps(content, sort_keys=True, ensure_ascii=False).encode()


def weights_digest(folder: Path) -> str:
    """sha256 over every weight and config file of a model folder: its identity, whatever it is called."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".json")):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        if path.suffix == ".json":
            h.update(canonical_bytes(path))
            continue
        update_from_file(h, path)
    return h.hexdigest()


class EmbeddingCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _paths(self, key: CacheKey) -> tuple[Path, Path]:
        return self.folder / f"{key.name}.npy", self.folder / f"{key.name}.json"

    def load(self, key: CacheKey, n_rows: int) -> np.ndarray | None:
        data_path, meta_path = self._paths(key)
        if not data_path.is_file() or not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != asdict(key) or meta.get("sha256") != file_sha256(data_path):
                raise ValueError("key or checksum mismatch")
            array: np.ndarray = np.load(data_path, allow_pickle=False)  # a .npy file: one array
            if array.ndim != 2 or array.shape[0] != n_rows or not np.isfinite(array).all():
                raise ValueError(f"unexpected array {array.shape}")
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            log.warning("embedding cache entry %s is unusable (%s): recomputing", data_path.name, exc)
            return None
        return array

    def save(self, key: CacheKey, array: np.ndarray, *, traffic: dict[str, str | None] | None = None) -> None:
        """Write atomically: a reader never sees a half-written entry, a crash leaves none. ``traffic``
        marks vectors of live traffic (personal data: retention purges them), with the traffic's oldest time."""
        self.folder.mkdir(parents=True, exist_ok=True)
        data_path, meta_path = self._paths(key)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
            digest = file_sha256(Path(tmp))
            os.replace(tmp, data_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = {"key": asdict(key), "sha256": digest, "shape": list(array.shape)}
        if traffic is not None:
            meta["traffic"] = traffic | {"written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        write_text_atomically(meta_path, json.dumps(meta))
