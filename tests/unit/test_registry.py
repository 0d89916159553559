"""Release-manager flows on a real MLflow store and ledger: register, gate, promote, roll back, history."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from registry.ledger import Ledger
from registry.store import alias_version
from tests.conftest import HELPCENTER

runner = CliRunner()
LENIENT = "min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: null\nn_resamples: 200\n"
STRICT = "min_delta: 0.5\nn_resamples: 200\nmax_latency_increase: null\n"


def cli(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [*args, "--json"])
    payload = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, payload, result.stderr


@pytest.fixture
def policies(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "lenient.yaml").write_text(LENIENT)
    (tmp_path / "strict.yaml").write_text(STRICT)
    return {"lenient": str(tmp_path / "lenient.yaml"), "strict": str(tmp_path / "strict.yaml")}


@pytest.fixture
def two_versions(store, tiny_model: Path, unique_name: str) -> str:
    """v1 and v2 of the same tiny model, v1 in production."""
    for _ in range(2):
        code, _, err = cli("register", str(tiny_model), "--name", unique_name, "--golden", str(HELPCENTER))
        assert code == 0, err
    code, _, err = cli("promote", unique_name, "--version", "1", "--initial", "--reason", "first")
    assert code == 0, err
    return unique_name


def ledger(store) -> Ledger:
    return Ledger(f"sqlite:///{store.home / 'ledger.db'}")


def outcomes(store, name: str) -> list[tuple[str, str | None, str | None, str]]:
    return [(m.action, m.from_version, m.to_version, m.outcome) for m in ledger(store).history(name)]


def test_register_tags_the_contract_and_golden_metrics(store, tiny_model: Path, unique_name: str) -> None:
    code, payload, err = cli("register", str(tiny_model), "--name", unique_name, "--golden", str(HELPCENTER))
    assert code == 0, err
    tags = MlflowClient().get_model_version(unique_name, payload["version"]).tags
    assert tags["embedding_dim"] == "32" and tags["golden_digest"] == payload["golden_digest"]
    assert float(tags["ndcg_at_10"]) == pytest.approx(payload["metrics"]["ndcg_at_10"], abs=1e-6)


def test_identical_models_share_a_tokenizer_hash(store, tiny_model: Path, unique_name: str) -> None:
    for _ in range(2):
        assert cli("register", str(tiny_model), "--name", unique_name, "--golden", str(HELPCENTER))[0] == 0
    client = MlflowClient()
    assert (
        client.get_model_version(unique_name, "1").tags["tokenizer_sha256"]
        == client.get_model_version(unique_name, "2").tags["tokenizer_sha256"]
    )


def test_a_used_tokenizer_hashes_like_a_fresh_one_unless_a_setting_changes(tmp_path: Path) -> None:
    """Retraining from a registered version writes call-time defaults into tokenizer_config.json;
    that is the same tokenizer (the gate must not call it a new one), a real change is not."""
    from evaluation.cache import RUNTIME_CONFIG_DEFAULTS
    from registry.contract import tokenizer_sha256

    base = {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}
    used = base | {"max_length": 64} | RUNTIME_CONFIG_DEFAULTS
    hashes = {}
    for label, config in (
        ("fresh", base),
        ("used", used),
        ("left", used | {"truncation_side": "left"}),
        ("cased", base | {"do_lower_case": False}),
    ):
        folder = tmp_path / label
        folder.mkdir()
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
        hashes[label] = tokenizer_sha256([folder / "tokenizer_config.json"])
    assert hashes["fresh"] == hashes["used"]
    assert len({hashes["fresh"], hashes["left"], hashes["cased"]}) == 3


def test_gate_rejects_then_passes_then_rollback_and_history(store, two_versions: str, policies: dict) -> None:
    name = two_versions
    code, payload, err = cli(
        "promote", name, "--version", "2", "--golden", str(HELPCENTER), "--policy", policies["strict"]
    )
    assert code == 3 and "gate rejected" in err
    assert payload["moved"] is False and payload["decision"]["verdict"] == "reject"
    assert alias_version(name, "production") == "1"
    version = MlflowClient().get_model_version(name, "2")
    assert version.tags["gate_verdict"] == "reject"
    run_id = version.tags["gate_decision_run_id"]
    report = Path(MlflowClient().download_artifacts(run_id, "gate/report.html")).read_text()
    assert "REJECT" in report and "<svg" in report and "ndcg_at_10_improvement" in report

    time.sleep(0.05)
    before_pass = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    code, payload, err = cli(
        "promote", name, "--version", "2", "--golden", str(HELPCENTER), "--policy", policies["lenient"]
    )
    assert code == 0, err
    assert payload["decision"]["verdict"] == "pass" and payload["production"] == "2"
    # The same weights twice: production's corpus vectors were reused from the cache for both sides.
    assert alias_version(name, "production") == "2" and alias_version(name, "previous") == "1"

    time.sleep(0.05)
    before_rollback = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    code, payload, err = cli("rollback", name, "--reason", "latency complaints")
    assert code == 0, err
    # v2 was rolled back from: it is no rollback target, and nothing before v1 is.
    assert alias_version(name, "production") == "1" and alias_version(name, "previous") is None
    listed = {v["version"]: v["aliases"] for v in cli("models", name)[1]["versions"]}
    assert listed == {"1": ["production"], "2": []}
    assert outcomes(store, name) == [
        ("promote", None, "1", "success"),
        ("promote", "1", "2", "rejected"),
        ("promote", "1", "2", "success"),
        ("rollback", "2", "1", "success"),
    ]

    assert cli("history", name, "--at", before_pass.isoformat())[1]["production_at"] == "1"
    assert cli("history", name, "--at", before_rollback.isoformat())[1]["production_at"] == "2"
    assert cli("history", name, "--at", dt.datetime.now(dt.UTC).isoformat())[1]["production_at"] == "1"
    assert cli("history", name, "--at", "2001-01-01T00:00:00Z")[1]["production_at"] is None
    table = runner.invoke(app, ["history", name])
    assert table.exit_code == 0 and "latency complaints" in table.stdout


def test_a_stale_expectation_is_a_conflict_with_its_ledger_row(store, two_versions: str) -> None:
    code, _, err = cli(
        "promote", two_versions, "--version", "2", "--skip-gate", "--reason", "hotfix", "--expect-production", "7"
    )
    assert code == 1 and "production moved from v7 to v1 since the gate ran" in err
    assert alias_version(two_versions, "production") == "1"
    assert outcomes(store, two_versions)[-1] == ("promote", "1", "2", "conflict")


@pytest.mark.parametrize(
    "args, message",
    [
        (["promote", "{name}", "--version", "9", "--skip-gate", "--reason", "x"], "has no version 9"),
        (["promote", "{name}", "--version", "1", "--skip-gate", "--reason", "x"], "v1 is already production"),
        (["promote", "{name}", "--version", "2", "--initial"], "--initial is only for the first promotion"),
        (["promote", "{name}", "--version", "2", "--skip-gate"], "--skip-gate needs --reason"),
        (["promote", "{name}", "--version", "2"], "the gate needs a golden set"),
        (["rollback", "{name}", "--reason", "x"], "no previous production version"),
        (["promote", "../{name}", "--version", "2", "--skip-gate", "--reason", "x"], "may use only"),
        (["history", "{name}", "--at", "yesterday"], "is not an ISO time"),
    ],
)
def test_refusals_leave_production_alone(store, two_versions: str, args: list, message: str) -> None:
    code, _, err = cli(*[a.replace("{name}", two_versions) for a in args])
    assert code == 1 and message in err, err
    assert alias_version(two_versions, "production") == "1"


def test_policy_file_problems_are_config_errors(store, two_versions: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_delta: -0.1\nprimary_metrc: ndcg_at_10\n")
    code, _, err = cli("promote", two_versions, "--version", "2", "--policy", str(bad), "--golden", str(HELPCENTER))
    assert code == 1 and "min_delta" in err and "primary_metrc: unknown setting" in err


def test_only_release_managers_move_production(store, two_versions: str, monkeypatch) -> None:
    monkeypatch.setenv("EMBEDOPS_RELEASE_MANAGERS", "alice,carol")
    code, _, err = cli("promote", two_versions, "--version", "2", "--skip-gate", "--reason", "x", "--actor", "bob")
    assert code == 1 and "'bob' may not move production" in err
    code, _, err = cli("promote", two_versions, "--version", "2", "--skip-gate", "--reason", "x", "--actor", "alice")
    assert code == 0, err
    assert ledger(store).history(two_versions)[-1].actor == "alice"


@pytest.mark.parametrize(
    ("grant", "managers", "refusal"),
    [
        (None, [], None),  # single user, no authentication: anyone
        (None, ["alice"], None),
        ("MANAGE", [], None),  # MLflow alone decides
        ("EDIT", ["alice"], None),
        ("READ", [], "MLflow grants 'alice' READ on registered model 'm'"),
        ("READ", ["alice"], "MLflow grants 'alice' READ"),  # on the list, but MLflow would refuse the alias write
        ("NO_PERMISSIONS", [], "needs EDIT or MANAGE"),
        ("MANAGE", ["carol"], "'alice' may not move production: release managers are carol"),  # the list narrows
    ],
)
def test_production_moves_need_mlflows_grant_and_the_list(
    grant: str | None, managers: list[str], refusal: str | None
) -> None:
    from registry.moves import NotAuthorizedError, authorize

    if refusal is None:
        authorize("alice", managers, mlflow_grant=grant, model="m")
    else:
        with pytest.raises(NotAuthorizedError, match=refusal):
            authorize("alice", managers, mlflow_grant=grant, model="m")
    authorize("alice", ["carol"], alias="candidate", mlflow_grant="EDIT", model="m")  # the list is about production
    with pytest.raises(NotAuthorizedError, match="moving candidate needs EDIT"):
        authorize("alice", [], alias="candidate", mlflow_grant="READ", model="m")


def test_serving_workers_share_the_cores() -> None:
    from registry.serve import threads_per_worker

    assert [
        threads_per_worker(2, 2),
        threads_per_worker(16, 4),
        threads_per_worker(1, 4),
        threads_per_worker(8, 1),
        threads_per_worker(7, 2),
    ] == [1, 4, 1, 8, 3]


def stored_weights(name: str, version: str) -> Path:
    """Where the artifact store keeps this version's weights (the embedded store is a folder)."""
    client = MlflowClient()
    model_id = client.get_model_version(name, version).source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location.removeprefix("file://")
    return Path(location) / "model.sentence_transformer" / "model.safetensors"


def test_corrupt_weights_are_refused_before_the_alias_moves(store, two_versions: str) -> None:
    weights = stored_weights(two_versions, "2")
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated upload
    code, _, err = cli("promote", two_versions, "--version", "2", "--skip-gate", "--reason", "x")
    assert code == 1 and "model.safetensors is corrupt" in err
    assert alias_version(two_versions, "production") == "1"
    assert outcomes(store, two_versions)[-1] == ("promote", "1", "2", "failed")


def test_missing_weights_make_rollback_fail_with_a_ledger_row(store, two_versions: str) -> None:
    assert cli("promote", two_versions, "--version", "2", "--skip-gate", "--reason", "x")[0] == 0
    stored_weights(two_versions, "1").unlink()
    code, _, err = cli("rollback", two_versions, "--reason", "bad release")
    assert code == 1 and "missing or unusable" in err
    assert alias_version(two_versions, "production") == "2"
    assert outcomes(store, two_versions)[-1] == ("rollback", "2", "1", "failed")


def test_the_ledger_is_append_only(store, two_versions: str) -> None:
    book = ledger(store)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), book.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alias_moves SET outcome = 'success'"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), book.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alias_moves"))
    assert len(book.history(two_versions)) == 1


def test_automation_may_only_set_the_candidate(store, two_versions: str, policies: dict, monkeypatch) -> None:
    monkeypatch.setenv("EMBEDOPS_RELEASE_MANAGERS", "alice")

    def promote_v2_as_the_bot(*flags: str) -> tuple[int, dict | None, str]:
        gate = ("--golden", str(HELPCENTER), "--policy", policies["lenient"])
        return cli("promote", two_versions, "--version", "2", *gate, *flags, "--actor", "retrain-bot")

    code, payload, err = promote_v2_as_the_bot("--gate-only")
    assert code == 0, err
    assert payload["candidate"] == "2" and payload["production"] == "1"
    assert alias_version(two_versions, "candidate") == "2" and alias_version(two_versions, "production") == "1"
    assert outcomes(store, two_versions)[-1] == ("gate", None, "2", "success")  # a gate row, not a production move
    code, _, err = promote_v2_as_the_bot()
    assert code == 1 and "'retrain-bot' may not move production" in err


def test_doctor_finds_and_repairs_what_killed_jobs_and_side_doors_leave(store, two_versions: str) -> None:
    name = two_versions
    code, report, _ = cli("doctor", "--model", name)
    assert code == 0 and report["clean"]

    client = MlflowClient()
    # A job killed seven hours ago left its run RUNNING; someone moved production past embedops.
    experiment = client.get_experiment_by_name("embedops-registry").experiment_id
    stale = client.create_run(experiment, start_time=int((time.time() - 7 * 3600) * 1000)).info.run_id
    client.set_registered_model_alias(name, "production", "2")
    code, report, _ = cli("doctor", "--model", name)
    found = {(f["kind"], f["subject"]) for f in report["findings"]}
    assert code == 6 and {("stale_run", stale), ("alias_disagrees_with_ledger", f"{name}@production")} <= found

    code, report, err = cli("doctor", "--model", name, "--fix")
    assert code == 0 and report["clean"] and report["fixed"] >= 2, err
    assert client.get_run(stale).info.status == "FAILED"
    assert alias_version(name, "production") == "1"  # back to what the ledger recorded
    repair = ledger(store).history(name)[-1]
    assert (repair.action, repair.from_version, repair.to_version, repair.outcome) == ("repair", "2", "1", "success")
    assert cli("doctor", "--model", name)[1]["clean"]


@pytest.mark.parametrize("alias_moved", [True, False])
def test_doctor_settles_a_move_whose_job_died_halfway(store, two_versions: str, alias_moved: bool) -> None:
    """The job recorded its pending move 1 -> 2 and was killed before (or after) MLflow's alias changed."""
    name = two_versions
    ledger(store).commit(
        actor="alice",
        action="promote",
        model=name,
        alias="production",
        from_version="1",
        to_version="2",
        reason="r",
        outcome="pending",
    )
    if alias_moved:
        MlflowClient().set_registered_model_alias(name, "production", "2")
    code, report, _ = cli("doctor", "--model", name)
    assert code == 6 and [f["kind"] for f in report["findings"]] == ["interrupted_move"]  # one finding, not two
    assert outcomes(store, name)[-1] == ("promote", "1", "2", "pending")  # an unsettled move shows in history

    code, report, err = cli("doctor", "--model", name, "--fix")
    assert code == 0 and report["clean"], err
    settled = ledger(store).history(name)[-1]
    assert (settled.actor, settled.action, settled.outcome) == (
        "alice",
        "promote",
        "success" if alias_moved else "failed",
    )
    assert "recorded by embedops doctor --fix" in settled.detail
    assert alias_version(name, "production") == ("2" if alias_moved else "1")
    assert alias_version(name, "previous") == ("1" if alias_moved else None)
    assert [m.outcome for m in ledger(store).history(name)][-2:] == ["success", settled.outcome]  # pending hidden
    assert cli("doctor", "--model", name)[1]["clean"]


def test_doctor_reports_a_version_registered_without_a_manifest(store, two_versions: str) -> None:
    client = MlflowClient()
    v1 = client.get_model_version(two_versions, "1")
    client.create_model_version(two_versions, v1.source, run_id=v1.run_id)  # v3, straight through MLflow
    code, report, _ = cli("doctor", "--model", two_versions, "--fix")
    assert code == 6 and [(f["kind"], f["subject"], f["fixable"]) for f in report["findings"]] == [
        ("unverified_version", f"{two_versions}/v3", False)
    ]
    assert "embedops register models:/" in report["findings"][0]["detail"]


def test_a_file_changed_after_registration_is_refused_by_its_manifest(store, two_versions: str) -> None:
    assert MlflowClient().get_model_version(two_versions, "2").tags["model_manifest_sha256"]
    # Still a loadable model, so only the manifest can tell: the config was edited in the store.
    config = stored_weights(two_versions, "2").parent / "config.json"
    config.write_text(config.read_text() + "\n")
    code, _, err = cli("promote", two_versions, "--version", "2", "--skip-gate", "--reason", "x")
    assert code == 1 and "config.json changed since registration" in err
    assert alias_version(two_versions, "production") == "1"
    assert outcomes(store, two_versions)[-1] == ("promote", "1", "2", "failed")


def test_versions_are_numbers_wherever_they_are_compared(store, two_versions: str) -> None:
    name = two_versions
    code, payload, err = cli("promote", name, "--version", "02", "--skip-gate", "--reason", "leading zero")
    assert code == 0 and payload["production"] == "2", err
    rows = len(outcomes(store, name))
    # Production is v2: "02" is the same version, so this would move nothing and must change nothing.
    code, _, err = cli("rollback", name, "--to-version", "02", "--reason", "typo")
    assert code == 1 and "v2 is already production; nothing was moved" in err
    assert (alias_version(name, "production"), alias_version(name, "previous")) == ("2", "1")
    assert len(outcomes(store, name)) == rows
    for bad in ("two", "0", "-1", "2.0"):
        code, _, err = cli("promote", name, "--version", bad, "--skip-gate", "--reason", "x")
        assert code == 1 and "is not a version number" in err, (bad, err)
    code, payload, err = cli("rollback", name, "--to-version", "v01", "--reason", "back")
    assert code == 0 and payload["production"] == "1", err
    assert alias_version(name, "previous") is None  # v2 was rolled back from


def test_skip_gate_refuses_a_contract_change_unless_reindex_is_allowed(
    store, two_versions: str, tmp_path: Path
) -> None:
    from tests.tiny_model import build_tiny_model

    wider = build_tiny_model(tmp_path / "wider", dim=48)
    assert cli("register", str(wider), "--name", two_versions)[0] == 0  # v3, 48 dimensions
    code, _, err = cli("promote", two_versions, "--version", "3", "--skip-gate", "--reason", "hotfix")
    assert code == 1 and "embedding_dim 32 -> 48" in err and "--allow-reindex" in err
    assert alias_version(two_versions, "production") == "1"
    assert outcomes(store, two_versions)[-1] == ("promote", "1", "3", "failed")
    code, payload, err = cli(
        "promote", two_versions, "--version", "3", "--skip-gate", "--reason", "hotfix", "--allow-reindex"
    )
    assert code == 0 and payload["production"] == "3", err


def test_doctor_puts_previous_back_where_the_ledger_says(store, two_versions: str) -> None:
    name = two_versions
    assert cli("promote", name, "--version", "2", "--skip-gate", "--reason", "x")[0] == 0
    MlflowClient().set_registered_model_alias(name, "previous", "2")  # a rollback would now go nowhere
    code, report, _ = cli("doctor", "--model", name)
    assert code == 6 and [(f["kind"], f["subject"]) for f in report["findings"]] == [
        ("alias_disagrees_with_ledger", f"{name}@previous")
    ]
    code, report, err = cli("doctor", "--model", name, "--fix")
    assert code == 0 and report["clean"], err
    assert alias_version(name, "previous") == "1"
    repair = ledger(store).history(name)[-1]
    assert (repair.action, repair.alias, repair.from_version, repair.to_version) == ("repair", "previous", "2", "1")
    assert cli("doctor", "--model", name)[1]["clean"]


@pytest.mark.parametrize("name", ["never-registered", "../etc"])
def test_history_of_a_model_that_does_not_exist_is_an_error(store, name: str) -> None:
    code, _, err = cli("history", name)
    assert code == 1 and ("no registered model named" in err or "may use only" in err), err


def test_rolling_back_twice_goes_further_back_never_to_what_was_pulled(
    store, tiny_model: Path, unique_name: str
) -> None:
    name = unique_name
    for _ in range(3):
        assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial")[0] == 0
    for version in ("2", "3"):
        assert cli("promote", name, "--version", version, "--skip-gate", "--reason", "release")[0] == 0
    assert (alias_version(name, "production"), alias_version(name, "previous")) == ("3", "2")

    code, payload, err = cli("rollback", name, "--reason", "v3 answers badly")
    assert code == 0 and (payload["previous_production"], payload["production"]) == ("3", "2"), err
    assert alias_version(name, "previous") == "1"  # not 3: that one was pulled
    code, payload, err = cli("rollback", name, "--reason", "v2 is no better")
    assert code == 0 and (payload["previous_production"], payload["production"]) == ("2", "1"), err
    assert alias_version(name, "previous") is None
    code, _, err = cli("rollback", name, "--reason", "once more")
    assert code == 1 and "no previous production version to roll back to" in err and "--to-version" in err
    assert alias_version(name, "production") == "1"

    # Forward again only on purpose: a promotion (here without the gate) or an explicit --to-version.
    code, _, err = cli("rollback", name, "--to-version", "3", "--reason", "fixed upstream after all")
    assert code == 0, err
    assert (alias_version(name, "production"), alias_version(name, "previous")) == ("3", None)
    assert outcomes(store, name)[-3:] == [
        ("rollback", "3", "2", "success"),
        ("rollback", "2", "1", "success"),
        ("rollback", "1", "3", "success"),
    ]
    assert cli("doctor", "--model", name)[1]["clean"]


def test_a_promoted_candidate_is_no_longer_the_candidate(store, two_versions: str, policies: dict) -> None:
    name = two_versions
    code, _, err = cli(
        "promote", name, "--version", "2", "--golden", str(HELPCENTER), "--policy", policies["lenient"], "--gate-only"
    )
    assert code == 0 and alias_version(name, "candidate") == "2", err
    code, payload, err = cli("promote", name, "--version", "candidate", "--skip-gate", "--reason", "reviewed")
    assert code == 0 and payload["production"] == "2", err
    assert alias_version(name, "candidate") is None
    assert outcomes(store, name)[-2:] == [("promote", "1", "2", "success"), ("promote", "2", None, "success")]
    assert ledger(store).history(name)[-1].alias == "candidate"
    assert cli("doctor", "--model", name)[1]["clean"]


def test_a_gate_only_preview_is_a_gate_row_and_promote_reuses_its_golden_set(
    store, two_versions: str, policies: dict
) -> None:
    name = two_versions
    # A rejected preview: on record as a gate on `candidate`, never as a rejected production move.
    code, payload, err = cli(
        "promote", name, "--version", "2", "--golden", str(HELPCENTER), "--golden-split", "dev",
        "--policy", policies["strict"], "--gate-only",
    )  # fmt: skip
    assert code == 3 and payload["decision"]["verdict"] == payload["verdict"] == "reject", err
    assert outcomes(store, name)[-1] == ("gate", None, "2", "rejected")
    tags = MlflowClient().get_model_version(name, "2").tags
    assert (tags["gate_golden"], tags["gate_golden_split"]) == (str(HELPCENTER), "dev")

    # A release manager promotes with no path of the data scientist's: the recorded set and split are used.
    code, payload, err = cli("promote", name, "--version", "2", "--policy", policies["lenient"])
    assert code == 0, err
    assert f"golden    {HELPCENTER} [dev]: the set v2 was gated on" in err
    assert payload["production"] == "2" and outcomes(store, name)[-1][:3] == ("promote", "1", "2")
    decision_run = MlflowClient().get_run(payload["decision_run_id"])
    assert (decision_run.data.params["golden"], decision_run.data.params["golden_split"]) == (str(HELPCENTER), "dev")


def test_promote_with_no_golden_set_anywhere_says_what_to_pass(store, two_versions: str, policies: dict) -> None:
    code, _, err = cli("promote", two_versions, "--version", "2", "--policy", policies["lenient"])
    assert code == 1 and "v2 was never gated: pass --golden DIR" in err
    assert outcomes(store, two_versions)[-1][:3] == ("promote", None, "1")  # nothing recorded, nothing moved


def test_compare_previews_a_gate_and_changes_nothing(store, two_versions: str, policies: dict, tmp_path: Path) -> None:
    name = two_versions
    before = outcomes(store, name)
    tags_before = MlflowClient().get_model_version(name, "2").tags
    code, payload, err = cli(
        "compare", name, "production", "2", "--golden", str(HELPCENTER), "--policy", policies["strict"],
        "--report-dir", str(tmp_path / "reports"),
    )  # fmt: skip
    assert code == 0, err  # a preview of a rejection is not a failure of the command
    assert (payload["baseline"], payload["version"], payload["verdict"]) == ("1", "2", "reject")
    assert payload["summary"].startswith("REJECT: v2 stays out of production, because ndcg_at_10_improvement")
    report = Path(payload["report"]).read_text()
    assert "compare by" in report and payload["summary"].split(",")[0] in report
    # Nothing recorded, nothing moved, nothing tagged.
    assert outcomes(store, name) == before and alias_version(name, "production") == "1"
    assert MlflowClient().get_model_version(name, "2").tags == tags_before
