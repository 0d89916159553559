"""Every command's --json keys, pinned: each command's job returns one result type, whose to_dict is
its --json. Scripts parse these objects, so a renamed or dropped key is a breaking change."""

from __future__ import annotations

import ast
import datetime as dt
import importlib
from dataclasses import fields, is_dataclass
from typing import Any

import pytest

from tests.conftest import REPO

CORPUS_VERSION_KEYS = {
    "name", "version", "digest", "rows", "created", "source", "added", "changed", "deleted", "first_event",
    "last_event",
}  # fmt: skip
# command -> (module, result type, its --json keys)
PINNED: dict[str, tuple[str, str, set[str]]] = {
    "train": (
        "training.job",
        "TrainResult",
        {
            "run_id", "experiment_id", "model_name", "version", "model_uri", "metrics", "base_metrics", "train",
            "data", "golden_digest", "seconds", "warnings", "contract_tags",
        },
    ),
    "tune": (
        "training.tune",
        "StudyResult",
        {
            "study", "parent_run_id", "trials", "best_params", "best_value", "best_trial", "best_run_id",
            "version", "seconds", "cpu_seconds",
        },
    ),
    "evaluate": (
        "evaluation.job",
        "EvaluationReport",
        {
            "model", "model_digest", "golden_path", "split", "golden_digest", "precision", "metrics", "ci",
            "n_queries", "n_documents", "cache_hit", "seconds", "latency", "warnings", "run_id",
        },
    ),
    "register": (
        "registry.register",
        "Registered",
        {"model", "version", "model_uri", "run_id", "metrics", "golden_digest", "tags"},
    ),
    "models": ("registry.store", "ModelListing", {"model", "versions"}),
    "promote": (
        "registry.promotion",
        "MoveResult",
        {
            "model", "version", "previous_production", "moved", "production", "verdict", "decision_run_id", "decision",
            "indexes",
        },
    ),
    "compare": (
        "registry.compare",
        "Comparison",
        {
            "model", "baseline", "version", "golden", "golden_split", "verdict", "summary", "decision", "changes",
            "report",
        },
    ),
    "rollback": (
        "registry.promotion", "RollbackResult", {"model", "production", "previous_production", "moved", "indexes"}
    ),
    "history": ("registry.promotion", "HistoryResult", {"model", "moves"}),
    "serve": ("registry.serve", "ServePlan", {"model", "alias", "version", "url", "invocations"}),
    "drift": (
        "monitoring.job",
        "DriftResult",
        {
            "model", "version", "score", "threshold", "p_value", "ks_dimensions", "drifted", "window", "tokenizer",
            "trigger", "idempotency_key", "run_id", "report_logged", "retrain", "retrain_error", "retention",
        },
    ),
    "retrain": (
        "embedops.pipelines",
        "RetrainResult",
        {
            "model", "version", "training_run_id", "drift_run_id", "verdict", "decision_run_id", "production",
            "candidate", "metrics",
        },
    ),
    "traffic_purge": (
        "monitoring.retention",
        "PurgeResult",
        {"older_than_days", "cutoff", "dry_run", "removed", "bytes", "items", "recorded"},
    ),
    "doctor": ("registry.doctor", "DoctorReport", {"models", "findings", "clean", "fixed", "remaining"}),
    "status": ("embedops.status", "StatusReport", {"store", "chosen_by", "ledger", "models"}),
    "corpus_add": ("indexing.corpus_store", "CorpusVersion", CORPUS_VERSION_KEYS),
    "corpus_update": ("indexing.corpus_store", "CorpusVersion", CORPUS_VERSION_KEYS),
    "corpus_list": ("indexing.corpus_store", "CorpusListing", {"root", "corpora"}),
    "index_build": (
        "registry.indexes",
        "IndexBuild",
        {
            "encoded", "kept_chunks", "already", "run_id", "index_id", "model", "corpus", "corpus_version",
            "corpus_digest", "rows", "state", "chunk_size", "chunks", "chunks_done", "precision", "started",
            "build_seconds", "attempts", "resumed_chunks", "docs_per_s", "ann", "ann_recall_at_10", "table_version",
            "files", "verified_at", "error", "syncs",
        },
    ),
    "index_status": ("indexing.inventory", "IndexInventory", {"root", "indexes"}),
    "index_sync": ("registry.indexes", "SyncReport", {"model", "corpus", "corpus_version", "synced", "skipped"}),
    "index_gc": ("registry.indexes", "GcReport", {"model", "keep", "kept", "removed", "dry_run"}),
    "search": (
        "registry.indexes", "SearchResult", {"model", "version", "corpus", "corpus_version", "index_id", "answers"}
    ),
    "shadow": (
        "registry.shadow",
        "ShadowResult",
        {
            "model", "production", "candidate", "corpus", "corpus_version", "production_index", "candidate_index",
            "traffic", "summary", "changed", "seconds", "run_id", "report",
        },
    ),
    "demo": ("embedops.demo", "DemoResult", {"model", "home", "ok", "seconds", "steps", "retrain_report", "history"}),
}  # fmt: skip


def result_type(module: str, name: str) -> type:
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def blank(cls: type, **values: Any) -> Any:
    """An instance with every field not given set to None: enough for keys, which never depend on values."""
    return cls(**({f.name: None for f in fields(cls)} | values))


def job_return_types() -> dict[str, set[str]]:
    """command -> the names in its job's return annotation, read from the CLI's source."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "embedops" / "cli").glob("*.py")):
        for command in ast.parse(path.read_text()).body:
            if not isinstance(command, ast.FunctionDef):
                continue
            for node in command.body:
                if isinstance(node, ast.FunctionDef) and node.name == "job" and node.returns is not None:
                    names = {n.id for n in ast.walk(node.returns) if isinstance(n, ast.Name)}
                    found[command.name] = names
    return found


def test_every_command_with_a_job_is_pinned_and_returns_its_pinned_type() -> None:
    jobs = job_return_types()
    assert set(jobs) == set(PINNED), "a command was added or removed: pin its --json keys here"
    for command, (_, type_name, _) in PINNED.items():
        assert type_name in jobs[command], f"{command}'s job returns {jobs[command]}, not {type_name}"


@pytest.mark.parametrize("command", sorted(PINNED))
def test_json_keys_are_pinned(command: str) -> None:
    module, type_name, keys = PINNED[command]
    cls = result_type(module, type_name)
    assert is_dataclass(cls) and cls.__dataclass_params__.frozen, f"{type_name} must be a frozen dataclass"  # type: ignore[attr-defined]
    # Fields that to_dict walks need a value of their type; the rest may stay None.
    needs = {
        "history": {"moves": []},
        "doctor": {"findings": []},
        "demo": {"steps": [], "history": []},
        "status": {"models": []},
        "serve": {"url": "http://127.0.0.1:5001"},
        "promote": {"indexes": ()},
        "rollback": {"indexes": ()},
        "corpus_list": {"corpora": []},
        "index_status": {"indexes": []},
        "search": {"answers": []},
        "index_build": {"result": blank_build()},
        "shadow": {"summary": shadow_summary(), "changed": [], "seconds": 0.0},
    }
    assert set(blank(cls, **needs.get(command, {})).to_dict()) == keys


def shadow_summary() -> Any:
    from indexing.search import Answer, Hit
    from indexing.shadow import compare, summarize

    ask = [Answer("q", [Hit("d", 1.0)], "1", "i", 1.0, 1.0)]
    return summarize(compare(ask, ask, 10), 10)


def test_shadow_summary_keys_are_pinned() -> None:
    summary = shadow_summary().to_dict()
    assert set(summary) == {"queries", "k", "rbo_p", "overlap", "rbo", "top1_changed", "score_shift", "latency_ms"}
    assert set(summary["rbo"]) == {"mean", "low", "high"} and set(summary["latency_ms"]["candidate"]) == {
        "p50", "p99", "calls"
    }  # fmt: skip


def blank_build() -> Any:
    from indexing.build import BuildResult
    from indexing.manifest import IndexManifest

    manifest = blank(IndexManifest, model=None, files={})
    return BuildResult(manifest, 0, 0, False)


def test_optional_keys_appear_only_when_they_apply() -> None:
    from registry.promotion import HistoryResult, MoveResult

    gate_only = MoveResult("m", "3", "2", False, "2", candidate="3").to_dict()
    assert set(gate_only) == PINNED["promote"][2] | {"candidate"}
    at = HistoryResult("m", [], dt.datetime(2026, 11, 20, tzinfo=dt.UTC), "2").to_dict()
    assert set(at) == PINNED["history"][2] | {"at", "production_at"} and at["at"] == "2026-11-20T00:00:00+00:00"
    from embedops.pipelines import BreakerReset

    assert BreakerReset("m").to_dict() == {"model": "m", "breaker": "reset"}


def test_nested_rows_keep_their_keys() -> None:
    from registry.doctor import Finding
    from registry.store import VersionRow

    assert {f.name for f in fields(VersionRow)} == {
        "version", "aliases", "ndcg_at_10", "recall_at_10", "gate_verdict", "embedding_dim", "run_id", "created",
    }  # fmt: skip
    assert {f.name for f in fields(Finding)} == {"kind", "subject", "detail", "fixable", "fixed"}
