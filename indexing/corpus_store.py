"""Corpus versions on disk: one Parquet snapshot and one JSON record per version, never rewritten.

``ROOT/NAME/v000003.parquet`` holds every document of version 3; ``v000003.json`` (written last,
by rename) is its record and the commit: a version without its record does not exist, so a job
killed halfway through an update leaves the corpus as it was. Updates of one corpus take a file
lock, so two at once make two versions in turn, never one lost.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from embedops.core.errors import CorpusError
from embedops.core.names import validate_name
from embedops.core.times import parse_iso
from indexing.corpus import Change, Document, apply_changes, corpus_digest, delta


@dataclass(frozen=True)
class CorpusVersion:
    name: str
    version: int
    digest: str
    rows: int
    created: str
    source: str  # the file this version was read from
    added: int
    changed: int
    deleted: int
    first_event: str  # event time of the oldest change in this version (its creation, for an add)
    last_event: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class CorpusStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, name: str) -> Path:
        return self.root / validate_name(name, "corpus name")

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and any(p.glob("v*.json")))

    def versions(self, name: str) -> list[CorpusVersion]:
        records = sorted(self.folder(name).glob("v*.json"))
        return [CorpusVersion(**json.loads(p.read_text())) for p in records]

    def get(self, name: str, version: int | None = None) -> CorpusVersion:
        """A version's record; ``None``: the latest."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none yet"
            raise CorpusError(
                f"no corpus '{name}' in {self.root} (corpora: {known}); add one with `embedops corpus add {name} FILE`"
            )
        if version is None:
            return versions[-1]
        for found in versions:
            if found.version == version:
                return found
        raise CorpusError(f"corpus '{name}' has no version {version} (versions 1 to {versions[-1].version})")

    def documents(self, version: CorpusVersion) -> list[Document]:
        """The documents of ``version``, checked against its digest: a snapshot edited on disk is refused."""
        import pyarrow.parquet as pq

        path = self._snapshot(version.name, version.version)
        try:
            table = pq.read_table(path).to_pydict()
        except (OSError, ValueError) as exc:
            raise CorpusError(f"version {version.version} of corpus '{version.name}' is unreadable ({exc})") from None
        docs = [Document(*row) for row in zip(table["id"], table["text"], table["updated_at"], strict=True)]
        if corpus_digest(docs) != version.digest:
            raise CorpusError(
                f"version {version.version} of corpus '{version.name}' changed on disk after it was written "
                f"(digest {corpus_digest(docs)[:12]} != {version.digest[:12]}): {path}"
            )
        return docs

    def add(self, name: str, documents: list[Document], *, source: str) -> CorpusVersion:
        """Version 1 of a new corpus; a name already in use is refused (update it instead)."""
        with self._locked(name):
            if self.versions(name):
                raise CorpusError(f"corpus '{name}' exists; change it with `embedops corpus update {name} CHANGES`")
            at = documents[0].updated_at
            return self._write(name, 1, documents, source=source, counts=(len(documents), 0, 0), events=(at, at))

    def update(self, name: str, changes: list[Change], *, source: str) -> CorpusVersion:
        """The next version: the latest with ``changes`` applied. All or nothing."""
        with self._locked(name):
            latest = self.get(name)
            before = self.documents(latest)
            after = apply_changes(before, changes, path=source)
            diff = delta(before, after)
            old_ids = {d.id for d in before}
            added = sum(1 for d in diff.upserts if d.id not in old_ids)
            times = sorted(parse_iso(c.ts) for c in changes)
            events = (times[0].isoformat(), times[-1].isoformat())
            counts = (added, len(diff.upserts) - added, len(diff.deletes))
            return self._write(name, latest.version + 1, after, source=source, counts=counts, events=events)

    def _snapshot(self, name: str, version: int) -> Path:
        return self.folder(name) / f"v{version:06d}.parquet"

    def _write(
        self,
        name: str,
        version: int,
        documents: list[Document],
        *,
        source: str,
        counts: tuple[int, int, int],
        events: tuple[str, str],
    ) -> CorpusVersion:
        import pyarrow as pa
        import pyarrow.parquet as pq

        record = CorpusVersion(
            name=name,
            version=version,
            digest=corpus_digest(documents),
            rows=len(documents),
            created=dt.datetime.now(dt.UTC).isoformat(),
            source=source,
            added=counts[0],
            changed=counts[1],
            deleted=counts[2],
            first_event=events[0],
            last_event=events[1],
        )
        columns = {
            "id": [d.id for d in documents],
            "text": [d.text for d in documents],
            "updated_at": [d.updated_at for d in documents],
        }
        snapshot = self._snapshot(name, version)
        pq.write_table(pa.table(columns), snapshot.with_suffix(".parquet.tmp"))
        os.replace(snapshot.with_suffix(".parquet.tmp"), snapshot)
        tmp = snapshot.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record.to_dict(), indent=1))
        os.replace(tmp, snapshot.with_suffix(".json"))  # the commit
        return record

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


@dataclass(frozen=True)
class CorpusListing:
    root: str
    corpora: list[CorpusVersion]  # the latest version of each, or every version of one

    def to_dict(self) -> dict[str, object]:
        return {"root": self.root, "corpora": [c.to_dict() for c in self.corpora]}


def listing(store: CorpusStore, name: str | None = None) -> CorpusListing:
    """Every version of ``name``, or the latest version of every corpus."""
    found = store.versions(name) if name else [store.get(n) for n in store.names()]
    if name and not found:
        store.get(name)  # the error that names the corpora there are
    return CorpusListing(str(store.root), found)
