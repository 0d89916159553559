"""What ``doctor`` checks of indexes, and how ``--fix`` repairs each: by resuming or rebuilding, never by guessing.

- ``unfinished_index``: a build that stopped (killed, failed verification): --fix resumes a
  ``building`` one from its last chunk and rebuilds a ``failed`` one;
- ``tampered_index``: a verified index whose files no longer match their sha256: rebuilt;
- ``index_fingerprint``: an index whose weights digest is not its version's: rebuilt;
- ``production_without_index``: production has no verified index of a corpus another version of the
  model is indexed for (a move made outside embedops, or an index removed): built.
"""

from __future__ import annotations

from collections.abc import Callable

from embedops.core.errors import EmbedopsError
from indexing.build import BuildOptions
from indexing.checks import file_problems
from indexing.manifest import IndexManifest, all_manifests, drop
from registry import store
from registry.doctor import Finding
from registry.index_moves import IndexRoots, version_weights
from registry.store import PRODUCTION


def index_findings(roots: IndexRoots, name: str) -> list[tuple[Finding, Callable[[], None]]]:
    """(finding, its fix) for every index problem of ``name``."""
    from indexing import lance

    found: list[tuple[Finding, Callable[[], None]]] = []
    mine = [m for m in all_manifests(roots.indexes) if m.model.name == name]
    digests: dict[str, str] = {}
    for m in mine:
        subject = f"{name}/v{m.model.version}/{m.corpus}"
        if m.state != "verified":
            what = m.error or f"{m.chunks_done} of {m.chunks} chunks committed"
            verb = "resumes it" if m.state == "building" else "rebuilds it"
            finding = Finding(
                "unfinished_index", subject, f"index {m.index_id} is {m.state} ({what}); --fix {verb}", True
            )
            found.append((finding, rebuild(roots, m, fresh=m.state == "failed")))
            continue
        problems = file_problems(m.files, lance.checksums(roots.indexes, m.index_id), lance.MUTABLE)
        if problems:
            detail = f"index {m.index_id} is not as verified: {'; '.join(problems[:3])}; --fix rebuilds it"
            found.append((Finding("tampered_index", subject, detail, True), rebuild(roots, m, fresh=True)))
            continue
        try:
            info = store.get_version(name, m.model.version)
            digests.setdefault(info.version, version_weights(info))
        except EmbedopsError as exc:
            detail = f"index {m.index_id}: its version cannot be checked ({exc})"
            found.append((Finding("index_fingerprint", subject, detail, False), lambda: None))
            continue
        if digests[info.version] != m.model.weights_digest:
            detail = (
                f"index {m.index_id} was built from weights {m.model.weights_digest[:12]}, "
                f"v{info.version}'s are {digests[info.version][:12]}; --fix rebuilds it"
            )
            found.append((Finding("index_fingerprint", subject, detail, True), rebuild(roots, m, fresh=True)))
    production = store.alias_version(name, PRODUCTION)
    if production is not None:
        served = {m.corpus for m in mine if m.model.version == production and m.state == "verified"}
        for corpus in sorted({m.corpus for m in mine} - served):
            if any(m.model.version == production and m.corpus == corpus for m in mine):
                continue  # its own finding above says what is wrong with it
            detail = f"production v{production} has no index of {corpus}, which other versions serve; --fix builds it"
            found.append(
                (
                    Finding("production_without_index", f"{name}/v{production}/{corpus}", detail, True),
                    build(roots, name, production, corpus),
                )
            )
    return found


def rebuild(roots: IndexRoots, manifest: IndexManifest, *, fresh: bool) -> Callable[[], None]:
    def fix() -> None:
        if fresh:
            drop(roots.indexes, manifest.index_id)
        build(roots, manifest.model.name, manifest.model.version, manifest.corpus, manifest.corpus_version)()

    return fix


def build(
    roots: IndexRoots, name: str, version: str, corpus: str, corpus_version: int | None = None
) -> Callable[[], None]:
    def fix() -> None:
        from registry.indexes import build_in

        build_in(roots, name, version, corpus, corpus_version=corpus_version, options=BuildOptions())

    return fix
