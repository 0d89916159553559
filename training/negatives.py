"""Hard negatives mined with the base model, guarded against false negatives, cached per input.

For each training query the base model ranks a candidate corpus; the highest-ranked documents that
are not one of the query's positives become its negatives. On small supervised sets most judged
queries have relevant documents nobody labelled, and those rank just below the positive: pushing
them away teaches the model to be wrong. The guard (sentence-transformers' ``relative_margin``)
skips every candidate scoring within that fraction of the positive's score.

Mining encodes the whole candidate corpus, so both halves are cached: the vectors per model (a trial
with other mining settings only rescores), and the mined set under a key of everything that decides
it: the model's weights digest, the training data's digest, the corpus' digest and the settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from embedops.core.errors import DataError
from embedops.core.files import file_sha256, read_jsonl, write_text_atomically
from evaluation.golden import document_text
from training.config import TrainConfig
from training.data import TrainingData

if TYPE_CHECKING:
    import datasets
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
# Bumped when the mining code changes what it produces for the same inputs: old cache entries then miss.
MINING_CODE_VERSION = 1
# Ranks searched for negatives past the margin. At 50, 115 of SciFact's 727 tuning pairs found none (the
# base model ranks many abstracts near their positive) and were dropped from training.
MINING_DEPTH = 1000


@dataclass(frozen=True)
class MiningSettings:
    num_negatives: int
    range_min: int
    range_max: int
    relative_margin: float
    # "n-tuple": one row per pair with all its negatives; "triplet": one row per negative.
    output_format: Literal["n-tuple", "triplet"]
    max_seq_length: int | None

    @classmethod
    def of(cls, cfg: TrainConfig, max_seq_length: int | None, corpus_size: int) -> MiningSettings:
        # TripletLoss and GISTEmbedLoss take one negative per row; the contrastive losses take a pair's all at once.
        output_format: Literal["n-tuple", "triplet"] = "triplet" if cfg.loss in ("triplet", "gist") else "n-tuple"
        return cls(
            num_negatives=cfg.num_negatives,
            range_min=cfg.negatives_range_min,
            # Deep enough that a query whose base-model ranking puts many documents near its positive (the
            # hard queries, the ones worth training on) still finds negatives past the margin: a pair short
            # of negatives is dropped. "top" sampling still takes the best-ranked candidates that pass.
            range_max=min(cfg.negatives_range_min + MINING_DEPTH, corpus_size),
            relative_margin=cfg.negatives_margin,
            output_format=output_format,
            max_seq_length=max_seq_length,
        )


@dataclass(frozen=True)
class MiningStats:
    """What mining found; logged to the run as ``negatives_*`` metrics."""

    pairs: int  # training pairs in
    rows: int  # training rows out
    negatives: int  # negatives in those rows
    short_pairs: int  # pairs with fewer than num_negatives candidates past the guard (n-tuple form drops them)
    corpus: int  # candidate documents
    positive_score_mean: float
    negative_score_mean: float
    negative_score_max: float
    # The hardest negative's score over its positive's: the guard keeps it at or below 1 - margin.
    score_ratio_max: float
    seconds: float = 0.0
    cached: bool = False

    def metrics(self) -> dict[str, float]:
        return {f"negatives_{k}": float(v) for k, v in asdict(self).items()}


def mining_stats(
    rows: list[tuple[str, str, list[float]]], *, pairs: int, corpus: int, num_negatives: int
) -> MiningStats:
    """Statistics over mined rows ``(anchor, positive, [positive score, negative scores...])``."""
    found: Counter[tuple[str, str]] = Counter()
    positives: dict[tuple[str, str], float] = {}
    negatives: list[float] = []
    ratios: list[float] = []
    for anchor, positive, (pos_score, *neg_scores) in rows:
        found[anchor, positive] += len(neg_scores)
        positives[anchor, positive] = pos_score
        negatives.extend(neg_scores)
        ratios.extend(s / pos_score for s in neg_scores if pos_score > 0)
    return MiningStats(
        pairs=pairs,
        rows=len(rows),
        negatives=len(negatives),
        short_pairs=pairs - sum(1 for n in found.values() if n >= num_negatives),
        corpus=corpus,
        positive_score_mean=statistics.fmean(positives.values()) if positives else 0.0,
        negative_score_mean=statistics.fmean(negatives) if negatives else 0.0,
        negative_score_max=max(negatives, default=0.0),
        score_ratio_max=max(ratios, default=0.0),
    )


def read_corpus(path: str | Path) -> list[str]:
    """Candidate texts from a BEIR folder's ``corpus.jsonl`` (or such a file): title, a space, the text."""
    path = Path(path).expanduser()
    file = path / "corpus.jsonl" if path.is_dir() else path
    texts = []
    for lineno, obj in read_jsonl(file):
        text, title = obj.get("text"), obj.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise DataError("expected a text (and optionally a title) string", path=str(file), row=lineno, field="text")
        if text.strip():
            texts.append(document_text(title, text))
    if not texts:
        raise DataError("no document with a text to mine negatives from", path=str(file))
    return texts


def candidate_corpus(cfg: TrainConfig, data: TrainingData) -> list[str]:
    """Where negatives come from: ``negatives_corpus`` if set, else the BEIR folder's corpus when the data
    is one, else the training positives. Always with every positive, which the miner then excludes."""
    source = cfg.negatives_corpus or (cfg.data if Path(cfg.data).expanduser().is_dir() else None)
    texts = read_corpus(source) if source else []
    positive = data.columns.index("positive")
    return list(dict.fromkeys([*texts, *(row[positive] for row in data.rows)]))


def cache_key(model_digest: str, data: TrainingData, corpus: list[str], settings: MiningSettings) -> dict[str, Any]:
    corpus_hash = hashlib.sha256()
    for text in corpus:
        corpus_hash.update(text.encode() + b"\0")
    return {
        "code": MINING_CODE_VERSION,
        "model_digest": model_digest,
        "data_digest": data.digest,
        "corpus_digest": corpus_hash.hexdigest(),
        "settings": asdict(settings),
    }


class NegativesCache:
    """Mined datasets as JSONL beside a JSON sidecar (key, stats, the file's sha256); a bad entry is a miss."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _paths(self, key: dict[str, Any]) -> tuple[Path, Path]:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return self.folder / f"{name}.jsonl", self.folder / f"{name}.json"

    def load(self, key: dict[str, Any]) -> tuple[list[dict[str, str]], MiningStats] | None:
        rows_path, meta_path = self._paths(key)
        if not rows_path.is_file() or not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != key or meta.get("sha256") != file_sha256(rows_path):
                raise ValueError("key or checksum mismatch")
            rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()]
            stats = MiningStats(**meta["stats"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("mined-negatives cache entry %s is unusable (%s): mining again", rows_path.name, exc)
            return None
        return rows, stats

    def embeddings_folder(self, model_digest: str, max_seq_length: int | None) -> Path:
        """Where sentence-transformers' miner keeps its query and corpus vectors for one model: trials that
        mine with other settings then only rescore. Its files are keyed by the texts alone, hence a folder
        per model; it writes them in place, so one a killed run left truncated is removed here."""
        folder = self.folder / "embeddings" / f"{model_digest[:32]}-{max_seq_length}"
        for path in folder.glob("*.npy") if folder.is_dir() else ():
            try:
                np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                log.warning("removing unreadable mining cache file %s (%s)", path.name, exc)
                path.unlink(missing_ok=True)
        return folder

    def save(self, key: dict[str, Any], rows: list[dict[str, str]], stats: MiningStats) -> None:
        rows_path, meta_path = self._paths(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomically(rows_path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        meta = {"key": key, "stats": asdict(stats), "sha256": file_sha256(rows_path)}
        write_text_atomically(meta_path, json.dumps(meta, indent=2))


def mine_negatives(
    model: SentenceTransformer,
    model_digest: str,
    data: TrainingData,
    cfg: TrainConfig,
    *,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> tuple[datasets.Dataset, MiningStats]:
    """The training dataset with mined negative columns, and what mining found (from the cache if it can)."""
    import datasets

    corpus = candidate_corpus(cfg, data)
    settings = MiningSettings.of(cfg, model.max_seq_length, len(corpus))
    key = cache_key(model_digest, data, corpus, settings)
    cache = NegativesCache(cache_dir) if cache_dir else None
    hit = cache.load(key) if cache else None
    if hit is not None:
        rows, stats = hit
        return datasets.Dataset.from_list(rows), replace(stats, cached=True, seconds=0.0)

    from sentence_transformers import mine_hard_negatives

    started = time.perf_counter()
    embeddings = cache.embeddings_folder(model_digest, settings.max_seq_length) if cache else None
    mined = mine_hard_negatives(
        data.to_dataset().select_columns(["anchor", "positive"]),
        model,
        anchor_column_name="anchor",
        positive_column_name="positive",
        corpus=corpus,
        range_min=settings.range_min,
        range_max=settings.range_max,
        relative_margin=settings.relative_margin or None,
        num_negatives=settings.num_negatives,
        sampling_strategy="top",
        output_format=settings.output_format,
        output_scores=True,
        batch_size=cfg.batch_size,
        verbose=progress,
        cache_folder=str(embeddings) if embeddings else None,
    )
    records = mined.to_list()
    negative_columns = [c for c in mined.column_names if c.startswith("negative")]
    scored = [(r["anchor"], r["positive"], [float(s) for s in r["scores"]]) for r in records]
    stats = replace(
        mining_stats(scored, pairs=len(data), corpus=len(corpus), num_negatives=settings.num_negatives),
        seconds=time.perf_counter() - started,
    )
    rows = [{c: r[c] for c in ("anchor", "positive", *negative_columns)} for r in records]
    if not rows:
        raise DataError(
            f"no pair kept {settings.num_negatives} negative(s) past the margin {settings.relative_margin}: "
            "lower num_negatives or negatives_margin, or mine from a larger negatives_corpus",
            path=data.source,
        )
    if cache:
        cache.save(key, rows, stats)
    return datasets.Dataset.from_list(rows), stats
