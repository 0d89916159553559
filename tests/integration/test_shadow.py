"""`embedops shadow` on both stacks: production and a candidate answer the same live queries, each
with its own model and index. The same weights re-registered agree fully; other weights do not,
and the logged per-query table agrees with an RBO computed here from its own rankings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from registry import store as registry_store
from tests.conftest import EXAMPLES, HELPCENTER, write_jsonl
from tests.integration.test_indexes import cli, three_models  # noqa: F401  (the fixture)
from tests.unit.test_shadow import rbo_by_definition

LIVE = EXAMPLES / "traffic" / "live"


def test_shadow_measures_what_a_candidate_changes_and_logs_it(
    stack,
    three_models: list[Path],  # noqa: F811
    unique_name: str,
    tmp_path: Path,
) -> None:
    name, corpus = unique_name, f"hc-{unique_name[-6:]}"
    for folder in (three_models[0], three_models[1], three_models[0]):  # v3: v1's weights, registered again
        assert cli("register", str(folder), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial", "--reason", "first")[0] == 0
    assert cli("corpus", "add", corpus, str(HELPCENTER))[0] == 0
    reports = tmp_path / "reports"
    args = ["--traffic", str(LIVE), "--corpus", corpus, "--sample", "300", "--report-dir", str(reports)]

    # A candidate without its own index is refused, naming the command that builds it.
    assert cli("index", "build", name, "--version", "1", "--corpus", corpus)[0] == 0
    code, _, err = cli("shadow", name, "--candidate", "2", *args)
    assert code == 1 and "has no index of corpus" in err and f"index build {name} --version 2" in err
    for version in ("2", "3"):
        assert cli("index", "build", name, "--version", version, "--corpus", corpus)[0] == 0

    code, same, err = cli("shadow", name, "--candidate", "3", *args)
    assert code == 0, err
    assert (same["production"], same["candidate"], same["traffic"]["sampled"]) == ("1", "3", 300)
    assert same["traffic"]["total"] == 2240
    summary = same["summary"]
    assert summary["rbo"] == {"mean": 1.0, "low": 1.0, "high": 1.0}
    assert summary["overlap"]["mean"] == 1.0 and summary["top1_changed"]["mean"] == 0.0

    code, other, err = cli("shadow", name, "--candidate", "2", *args)
    assert code == 0, err
    summary = other["summary"]
    assert summary["rbo"]["mean"] < 0.9 and summary["top1_changed"]["mean"] > 0.1
    assert summary["rbo"]["low"] <= summary["rbo"]["mean"] <= summary["rbo"]["high"]
    # The per-query table logged to MLflow, checked against an RBO computed here from its rankings.
    client = registry_store.client()
    table = pd.read_parquet(client.download_artifacts(other["run_id"], "shadow_queries.parquet", str(tmp_path)))
    assert len(table) == 300
    independent = [
        rbo_by_definition(list(p), list(c), 0.9) for p, c in zip(table.production, table.candidate, strict=True)
    ]
    assert summary["rbo"]["mean"] == pytest.approx(sum(independent) / len(independent), abs=1e-6)
    changed = [list(p[:1]) != list(c[:1]) for p, c in zip(table.production, table.candidate, strict=True)]
    assert summary["top1_changed"]["mean"] == pytest.approx(sum(changed) / len(changed))
    run = client.get_run(other["run_id"])
    assert run.data.params["production_index"] == f"{name}-v1-{corpus}"
    assert run.data.params["candidate_index"] == f"{name}-v2-{corpus}"
    assert run.data.metrics["shadow_rbo"] == pytest.approx(summary["rbo"]["mean"])
    tags = registry_store.get_version(name, "2").tags
    assert (tags["shadow.run_id"], tags["shadow.against"]) == (other["run_id"], "1")
    page = Path(other["report"]).read_text(encoding="utf-8")
    assert "would change the top result of" in page and other["changed"][0]["query"][:20] in page

    # Windows that cannot say anything are refused before any model loads.
    code, _, err = cli("shadow", name, "--candidate", "2", *args, "--start", "2030-01-01T00:00:00Z")
    assert code == 1 and "no usable texts" in err
    one = write_jsonl(tmp_path / "one.jsonl", [{"text": "how do I reset my password?", "ts": "2026-11-09T10:00:00Z"}])
    code, _, err = cli("shadow", name, "--candidate", "2", "--traffic", str(one), "--corpus", corpus)
    assert code == 1 and "fewer than the 10 a shadow comparison needs" in err
    code, _, err = cli("shadow", name, "--candidate", "production", *args)
    assert code == 1 and "the candidate is production" in err


def test_a_gate_policy_with_a_shadow_block_runs_it_and_its_thresholds_decide(
    stack,
    three_models: list[Path],  # noqa: F811
    unique_name: str,
    tmp_path: Path,
) -> None:
    """Thresholds set: a candidate with no index cannot be compared, so its --gate-only gate is rejected
    on the shadow checks; with --build-index its index is built before the comparison, the same weights
    re-registered change nothing, and the gate passes with the comparison in its checks and report."""
    name, corpus = unique_name, f"hc-{unique_name[-6:]}"
    for folder in (three_models[0], three_models[0]):
        assert cli("register", str(folder), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial", "--reason", "first")[0] == 0
    assert cli("corpus", "add", corpus, str(HELPCENTER))[0] == 0
    assert cli("index", "build", name, "--version", "1", "--corpus", corpus)[0] == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"min_delta: 0\nalpha: null\nguards: {{}}\nmax_latency_increase: null\n"
        f"shadow:\n  traffic: {LIVE}\n  sample: 200\n  min_rbo: 0.99\n  max_top1_change: 0.0\n"
    )
    gate = ["--policy", str(policy), "--golden", str(HELPCENTER), "--reason", "same weights"]

    code, rejected, err = cli("promote", name, "--version", "2", "--gate-only", *gate)
    assert code == 3, err
    failed = {c["name"]: c for c in rejected["decision"]["checks"] if not c["passed"]}
    assert set(failed) == {"shadow_rbo", "shadow_top1_change"}
    assert (
        "no shadow comparison" in failed["shadow_rbo"]["detail"]
        and "has no index of corpus" in failed["shadow_rbo"]["detail"]
    )

    code, moved, err = cli("promote", name, "--version", "2", "--build-index", *gate)
    assert code == 0, err
    assert moved["production"] == "2"
    checks = {c["name"]: c for c in moved["decision"]["checks"]}
    assert (checks["shadow_rbo"]["passed"], checks["shadow_rbo"]["observed"]) == (True, 1.0)
    assert (checks["shadow_top1_change"]["passed"], checks["shadow_top1_change"]["observed"]) == (True, 0.0)
    client = registry_store.client()
    page = Path(client.download_artifacts(moved["decision_run_id"], "gate/report.html", str(tmp_path)))
    text = page.read_text(encoding="utf-8")
    assert "What changes for live queries (shadow)" in text and "would change the top result of 0%" in text
    assert registry_store.get_version(name, "2").tags["shadow.against"] == "1"
