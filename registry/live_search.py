"""What a serving worker answers with, and how it follows the alias: model and indexes swap as one.

A ``Live`` is one version's loaded model and its verified index of each corpus, built whole before
it is used. A request takes the current ``Live`` once and uses only it, so its vector and its index
always come from the same version. A watcher thread reads the ledger every few seconds; when the
alias has moved it loads the new version (verified like every load) and its indexes, then swaps the
reference. Requests in flight finish on the old one; none waits or fails. If the new version cannot
be loaded (no verified index, changed files), the old one keeps serving and ``/health`` says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from embedops.core.errors import EmbedopsError, VectorIndexError
from evaluation.job import LoadedModel
from indexing.corpus_store import CorpusStore
from indexing.inventory import freshness_lag
from indexing.manifest import all_manifests
from indexing.search import Answer, Searcher, find
from registry import store
from registry.index_moves import IndexRoots
from registry.ledger import Ledger, recorded_position
from registry.serving_metrics import SearchMetrics

log = logging.getLogger(__name__)
POLL_S = 2.0


@dataclass(frozen=True)
class Live:
    version: str
    loaded: LoadedModel
    searchers: dict[str, Searcher]  # corpus -> its verified index, with this version's model
    manifest_sha256: str = ""  # the version's registered file manifest
    lock: threading.Lock = field(default_factory=threading.Lock)  # one encode at a time per model

    def search(self, corpus: str | None, queries: list[str], k: int) -> list[Answer]:
        if corpus is None:
            if len(self.searchers) != 1:
                raise VectorIndexError(f"name the corpus: this server searches {', '.join(sorted(self.searchers))}")
            corpus = next(iter(self.searchers))
        if corpus not in self.searchers:
            known = ", ".join(sorted(self.searchers)) or "none"
            raise VectorIndexError(f"v{self.version} serves no index of corpus '{corpus}' (it serves: {known})")
        with self.lock:
            return self.searchers[corpus].search(queries, k)


def load_live(
    roots: IndexRoots, info: store.VersionInfo, corpora: list[str] | None, loaded: LoadedModel | None = None
) -> Live:
    """``info`` loaded (verified) with its verified index of each corpus (``None``: every corpus it has one of)."""
    from registry.indexes import identity
    from registry.verified import load_version

    loaded = loaded or load_version(info, device="cpu")
    model = identity(info, loaded)
    wanted = corpora
    if wanted is None:
        wanted = sorted(
            {
                m.corpus
                for m in all_manifests(roots.indexes)
                if m.model.name == info.name and m.model.version == info.version and m.state == "verified"
            }
        )
    searchers = {c: Searcher(roots.indexes, find(roots.indexes, model, c), model, loaded.model) for c in wanted}
    from registry.contract import MANIFEST_TAG

    return Live(info.version, loaded, searchers, info.tags.get(MANIFEST_TAG, ""))


class Follower:
    """The current ``Live`` for an alias, kept current by a watcher thread reading the ledger."""

    def __init__(
        self,
        name: str,
        alias: str,
        roots: IndexRoots,
        ledger: Ledger,
        live: Live,
        corpora: list[str] | None,
        metrics: SearchMetrics,
        load: Callable[[IndexRoots, store.VersionInfo, list[str] | None], Live] = load_live,
    ) -> None:
        self.name, self.alias, self.roots, self.ledger = name, alias, roots, ledger
        self.live, self.corpora, self.metrics, self.load = live, corpora, metrics, load
        self.error: str | None = None
        self.swaps = 0
        self.report_indexes()

    def target(self) -> str | None:
        return recorded_position(self.ledger.history(self.name), self.alias)

    def refresh(self) -> bool:
        """Swap to the version the ledger now gives the alias; True when it swapped."""
        wanted = self.target()
        if wanted is None or wanted == self.live.version:
            self.error = None
            return False
        try:
            live = self.load(self.roots, store.get_version(self.name, wanted), self.corpora)
        except EmbedopsError as exc:
            self.error = f"still serving v{self.live.version}: v{wanted} cannot serve ({exc})"
            log.warning(self.error)
            return False
        self.live, self.error = live, None  # one assignment: a request sees the old Live or the new
        self.swaps += 1
        self.report_indexes()
        return True

    def report_indexes(self) -> None:
        store_ = CorpusStore(self.roots.corpora)
        now = dt.datetime.now(dt.UTC)
        for corpus, searcher in self.live.searchers.items():
            m = searcher.manifest
            try:
                lag = freshness_lag(m.corpus_version, store_.versions(corpus), now)
            except EmbedopsError:
                lag = 0.0
            self.metrics.index(model_version=self.live.version, index_id=m.index_id, rows=m.rows, lag_s=lag)

    def watch(self, interval_s: float = POLL_S) -> threading.Thread:
        def loop() -> None:
            while True:
                time.sleep(interval_s)
                try:
                    self.refresh()
                except Exception as exc:  # a ledger hiccup must not kill the watcher
                    self.error = f"watching the ledger failed: {exc}"
                    log.warning(self.error)

        thread = threading.Thread(target=loop, name="embedops-alias-watcher", daemon=True)
        thread.start()
        return thread

    def health(self) -> dict[str, Any]:
        return {
            "status": "stale" if self.error else "ok",
            "model": self.name,
            "alias": self.alias,
            "version": self.live.version,
            "indexes": {c: s.manifest.index_id for c, s in self.live.searchers.items()},
            "swaps": self.swaps,
            "error": self.error,
        }
