"""Commands for corpora, their indexes and search: corpus add/update/list, index build/status, search."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from embedops.cli.common import PRECISION_CHOICES, DebugOpt, JsonOpt, app, choice_opt, opt, parse_time, run_job
from embedops.core.settings import Settings

ENGINES = ("local", "ray")

if TYPE_CHECKING:
    from indexing.corpus_store import CorpusListing, CorpusVersion
    from indexing.inventory import IndexInventory
    from registry.indexes import GcReport, IndexBuild, SearchResult, SyncReport
    from registry.shadow import ShadowResult

corpus_app = typer.Typer(no_args_is_help=True, help="Named, versioned document collections that indexes encode.")
index_app = typer.Typer(no_args_is_help=True, help="Each model version's index of a corpus: build, resume, status.")
app.add_typer(corpus_app, name="corpus", rich_help_panel="Search")
app.add_typer(index_app, name="index", rich_help_panel="Search")

IdFieldOpt = Annotated[str | None, opt("The id field (default: _id, else id).", "--id-field")]
TextFieldOpt = Annotated[
    list[str] | None, opt("A text field; repeat to join several (default: title and text).", "--text-field")
]


def render_corpus_version(result: CorpusVersion, settings: Settings) -> None:
    changes = f"+{result.added} added, {result.changed} changed, {result.deleted} deleted"
    typer.echo(
        f"corpus {result.name} v{result.version}: {result.rows:,} documents ({changes}), digest {result.digest[:12]}"
    )


@corpus_app.command("add")
def corpus_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Corpus name.")],
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="BEIR corpus.jsonl (or its folder), or JSONL/CSV/Parquet.")
    ],
    id_field: IdFieldOpt = None,
    text_field: TextFieldOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Add a corpus: version 1, every row validated first (a bad row is refused with its file, row and field)."""

    def job(settings: Settings) -> CorpusVersion:
        from indexing.corpus import now_iso, read_documents
        from indexing.corpus_store import CorpusStore

        documents = read_documents(path, at=now_iso(), id_field=id_field, text_fields=text_field or ())
        return CorpusStore(settings.corpus_root).add(name, documents, source=str(path))

    run_job(job, render_corpus_version, as_json=as_json, debug=debug)


@corpus_app.command("update")
def corpus_update(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Corpus name.")],
    changes: Annotated[
        Path, typer.Argument(metavar="CHANGES", help="JSONL/CSV/Parquet rows: op (upsert|delete), id, text, ts.")
    ],
    id_field: IdFieldOpt = None,
    text_field: TextFieldOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """A new corpus version: the latest with these changes applied, all or nothing."""

    def job(settings: Settings) -> CorpusVersion:
        from indexing.corpus import read_changes
        from indexing.corpus_store import CorpusStore

        parsed = read_changes(changes, id_field=id_field, text_fields=text_field or ())
        return CorpusStore(settings.corpus_root).update(name, parsed, source=str(changes))

    run_job(job, render_corpus_version, as_json=as_json, debug=debug)


@corpus_app.command("list")
def corpus_list(
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="One corpus: all its versions.")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The corpora and their latest versions; with NAME, every version of that corpus."""

    def job(settings: Settings) -> CorpusListing:
        from indexing.corpus_store import CorpusStore, listing

        return listing(CorpusStore(settings.corpus_root), name)

    def render(result: CorpusListing, settings: Settings) -> None:
        if not result.corpora:
            typer.echo(f"no corpora in {result.root}: add one with `embedops corpus add NAME FILE`")
        for c in result.corpora:
            typer.echo(
                f"{c.name:20s} v{c.version:<4d} {c.rows:>9,} docs  +{c.added} ~{c.changed} -{c.deleted}  "
                f"{c.created[:19]}  {c.digest[:12]}  {c.source}"
            )

    run_job(job, render, as_json=as_json, debug=debug, reads_only=True)


@index_app.command("build")
def index_build(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registered model name.")],
    corpus: Annotated[str, opt("The corpus to encode.", "--corpus")],
    version: Annotated[
        str, opt("Version number or alias (production, candidate, previous).", "--version")
    ] = "production",
    corpus_version: Annotated[int | None, opt("Corpus version (default: the latest).", "--corpus-version")] = None,
    precision: Annotated[str, choice_opt("Encoding precision", PRECISION_CHOICES)] = "fp32",
    chunk_size: Annotated[int, opt("Documents per committed chunk (a kill loses at most one).", "--chunk-size")] = 256,
    batch_size: Annotated[int, opt("Encoding batch size.", "--batch-size")] = 32,
    rebuild: Annotated[bool, opt("Start over, discarding this version's index of the corpus.", "--rebuild")] = False,
    engine: Annotated[
        str, choice_opt("Who encodes: this process, or a Ray cluster (needs the ray extra)", ENGINES)
    ] = "local",
    ray_address: Annotated[
        str | None,
        opt(
            "Ray cluster to join: auto (the running one) or ray://HOST:PORT; default: start a local one.",
            "--ray-address",
        ),
    ] = None,
    actors: Annotated[int | None, opt("Ray actors, one model each (default: as many as fit).", "--actors")] = None,
    actor_cpus: Annotated[float, opt("CPUs per Ray actor.", "--actor-cpus")] = 1.0,
    actor_gpus: Annotated[float, opt("GPUs per Ray actor.", "--actor-gpus")] = 0.0,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Encode a corpus with one version into a verified index; a killed build resumes when run again."""
    from embedops.core.errors import ConfigError

    if chunk_size < 1 or batch_size < 1:
        raise typer.BadParameter("--chunk-size and --batch-size must be at least 1")
    ray_set = ray_address is not None or actors is not None or actor_cpus != 1.0 or actor_gpus != 0.0
    if engine == "local" and ray_set:
        raise typer.BadParameter("--ray-address, --actors, --actor-cpus and --actor-gpus need --engine ray")
    if (actors is not None and actors < 1) or actor_cpus < 0 or actor_gpus < 0 or actor_cpus + actor_gpus == 0:
        raise typer.BadParameter("--actors must be at least 1, and an actor needs some CPUs or GPUs")

    def job(settings: Settings) -> IndexBuild:
        from indexing.build import BuildOptions
        from registry.indexes import build_in, roots_of

        if corpus_version is not None and corpus_version < 1:
            raise ConfigError("--corpus-version starts at 1")
        from indexing.ray_engine import RayOptions

        options = BuildOptions(chunk_size=chunk_size, batch_size=batch_size, precision=precision)
        ray = (
            RayOptions(address=ray_address, actors=actors, actor_cpus=actor_cpus, actor_gpus=actor_gpus)
            if engine == "ray"
            else None
        )
        return build_in(
            roots_of(settings),
            model,
            version,
            corpus,
            corpus_version=corpus_version,
            options=options,
            rebuild=rebuild,
            ray=ray,
        )

    def render(result: IndexBuild, settings: Settings) -> None:
        m = result.result.manifest
        if result.result.already:
            typer.echo(
                f"index {m.index_id} is built and verified already ({m.rows:,} rows of {m.corpus} v{m.corpus_version})"
            )
            return
        kept = (
            f", {result.result.kept_chunks} chunks kept from an interrupted build" if result.result.kept_chunks else ""
        )
        search = "exact search" if m.ann is None else f"{m.ann['type']}, recall@10 {m.ann_recall_at_10:.3f} vs exact"
        typer.echo(
            f"index {m.index_id}: {m.rows:,} rows of {m.corpus} v{m.corpus_version}, verified; "
            f"{m.build_seconds:.1f} s encoding ({m.docs_per_s or 0:,.0f} docs/s){kept}; {search}"
        )

    run_job(job, render, as_json=as_json, debug=debug)


@index_app.command("status")
def index_status(
    model: Annotated[str | None, typer.Argument(metavar="[MODEL]", help="Only this model's indexes.")] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Every index: state, rows, build time, ANN recall, and freshness lag behind its corpus."""

    def job(settings: Settings) -> IndexInventory:
        from indexing.corpus_store import CorpusStore
        from indexing.inventory import inventory

        return inventory(settings.index_root, CorpusStore(settings.corpus_root), model)

    def render(result: IndexInventory, settings: Settings) -> None:
        if not result.indexes:
            typer.echo(f"no indexes in {result.root}: build one with `embedops index build MODEL --corpus NAME`")
        for r in result.indexes:
            corpus = f"{r.corpus} v{r.corpus_version}" + (
                f" (latest v{r.latest_corpus_version}, lag {r.freshness_lag_s:.0f} s)"
                if r.latest_corpus_version and r.latest_corpus_version != r.corpus_version
                else ""
            )
            state = r.state if r.state != "building" else f"building {r.chunks_done}/{r.chunks} chunks"
            typer.echo(f"{r.index_id:32s} {state:24s} {r.rows:>9,} rows  {r.ann:11s} {corpus}")

    run_job(job, render, as_json=as_json, debug=debug, reads_only=True)


@index_app.command("sync")
def index_sync(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registered model name.")],
    corpus: Annotated[str, opt("The corpus whose latest version the indexes catch up with.", "--corpus")],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Bring production's, candidate's and previous's indexes to the corpus's latest version, encoding only the
    changed documents; each swaps in whole once verified."""

    def job(settings: Settings) -> SyncReport:
        from registry.indexes import sync_model

        return sync_model(settings, model, corpus)

    def render(result: SyncReport, settings: Settings) -> None:
        for s in result.synced:
            typer.echo(
                f"{s['alias']:10s} v{s['version']}: {s['index_id']} {result.corpus} v{s['from_version']} -> "
                f"v{s['to_version']} ({s['upserts']:,} encoded, {s['deletes']:,} deleted, {s['seconds']:.1f} s; "
                f"lag was {s['lag_before_s']:.0f} s)"
            )
        for line in result.skipped:
            typer.echo(line)

    run_job(job, render, as_json=as_json, debug=debug)


@index_app.command("gc")
def index_gc(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registered model name.")],
    keep: Annotated[int, opt("Keep the indexes of this many recent production versions.", "--keep")] = 3,
    dry_run: Annotated[bool, opt("Say what would be removed; remove nothing.", "--dry-run")] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Remove indexes no rollback can reach: never one an alias points at, nor a version newer than those."""

    def job(settings: Settings) -> GcReport:
        from registry.indexes import gc

        return gc(settings, model, keep=keep, dry_run=dry_run)

    def render(result: GcReport, settings: Settings) -> None:
        verb = "would remove" if result.dry_run else "removed"
        typer.echo(f"{verb} {len(result.removed)}: {', '.join(result.removed) or '-'}")
        typer.echo(f"kept {len(result.kept)}: {', '.join(result.kept) or '-'}")

    run_job(job, render, as_json=as_json, debug=debug)


@app.command(rich_help_panel="Search")
def search(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registered model name.")],
    query: Annotated[list[str], typer.Argument(metavar="QUERY...", help="One or more queries.")],
    corpus: Annotated[str, opt("The corpus to search.", "--corpus")],
    version: Annotated[str, opt("Version number or alias.", "--version")] = "production",
    k: Annotated[int, opt("How many documents per query.", "-k", "--top-k")] = 10,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Search a corpus with a version and its own verified index (another version's index is refused)."""
    if k < 1:
        raise typer.BadParameter("-k must be at least 1")

    def job(settings: Settings) -> SearchResult:
        from registry.indexes import search as run_search

        return run_search(settings, model, version, corpus, query, k)

    def render(result: SearchResult, settings: Settings) -> None:
        typer.echo(
            f"{result.model} v{result.version}, index {result.index_id} ({result.corpus} v{result.corpus_version})"
        )
        for answer in result.answers:
            typer.echo(f"\n{answer.query}")
            for rank, hit in enumerate(answer.hits, start=1):
                typer.echo(f"  {rank:2d}. {hit.id:24s} {hit.score:.4f}")

    run_job(job, render, as_json=as_json, debug=debug, reads_only=True)


@app.command(rich_help_panel="Release managers")
def shadow(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registered model name.")],
    traffic: Annotated[Path, opt('Live queries: a JSONL file or a folder of them ({"text", "ts"} per line).')],
    corpus: Annotated[str, opt("The corpus both versions search, each with its own index.", "--corpus")],
    candidate: Annotated[str, opt("The version to compare with production: a number or an alias.")] = "candidate",
    start: Annotated[str | None, opt("Window start (ISO time, inclusive).")] = None,
    end: Annotated[str | None, opt("Window end (ISO time, exclusive).")] = None,
    sample: Annotated[int, opt("Queries drawn from the window (seeded).")] = 2000,
    k: Annotated[int, opt("Answers compared per query.", "-k", "--top-k")] = 10,
    seed: Annotated[int, opt("Seed of the sample and the bootstrap.")] = 0,
    report_dir: Annotated[
        Path | None, opt("Where the HTML report is written (default: $EMBEDOPS_HOME/shadow).", "--report-dir")
    ] = None,
    config: Annotated[
        Path | None, opt("Drift config YAML whose `redaction:` block the queries go through (default: mask all).")
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """What the candidate would change for live queries: both versions answer a sample of them, side by side."""
    if sample < 1 or k < 1:
        raise typer.BadParameter("--sample and -k must be at least 1")

    def job(settings: Settings) -> ShadowResult:
        from monitoring.config import load_drift_config
        from monitoring.redaction import Redactor
        from monitoring.windows import read_window
        from registry.indexes import roots_of
        from registry.shadow import MIN_QUERIES, run_shadow

        window = read_window(
            traffic,
            start=parse_time(start, "--start"),
            end=parse_time(end, "--end"),
            size=sample,
            seed=seed,
            min_texts=MIN_QUERIES,
            purpose="a shadow comparison",
            redactor=Redactor(load_drift_config(config).redaction),
        )
        folder = report_dir or settings.shadow_report_dir
        return run_shadow(
            roots_of(settings), model, candidate, corpus, window.as_traffic(), k=k, report_dir=folder, seed=seed
        )

    def render(result: ShadowResult, settings: Settings) -> None:
        from registry.shadow_report import headline

        s = result.summary
        typer.echo(headline(result))
        typer.echo(
            f"overlap@{s.k} {s.overlap.mean:.3f} [{s.overlap.low:.3f}, {s.overlap.high:.3f}]  "
            f"score shift {s.score_shift.mean:+.3f}  latency p99 production "
            f"{s.latency_ms['production']['p99']:.1f} ms, candidate {s.latency_ms['candidate']['p99']:.1f} ms"
        )
        for row in result.changed[:5]:
            typer.echo(f"  RBO {row.rbo:.2f}  {row.query[:70]}")
        typer.echo(f"report: {result.report}  (MLflow run {result.run_id}, experiment shadow)")

    run_job(job, render, as_json=as_json, debug=debug)
