"""Live traffic's personal data, end to end: planted values reach no file a job writes; retention purges
what is past its limit, records it, and leaves a store drift jobs still work on."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from mlflow import MlflowClient

from embedops.core.names import PURGED_TAG
from embedops.core.settings import Settings
from monitoring.retention import PurgeLog
from registry.ledger import Ledger
from tests.conftest import HELPCENTER, read_jsonl, write_jsonl
from tests.integration.test_drift_retrain import BIO, retrain_config
from tests.integration.test_indexes import cli

pytestmark = [pytest.mark.slow]
QUESTIONS = [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
TITLES = [d["title"] for d in read_jsonl(HELPCENTER / "corpus.jsonl")]
# One of each kind, each in a form a person would type; none of them may be found anywhere afterwards.
PLANTED = {
    "email": "zoe.quartermaine-71@example-mail.org",
    "card": "4539 1488 0343 6467",
    "iban": "DE89 3704 0044 0532 0130 00",
    "phone": "+44 20 7946 0958",
    "ip": "203.0.113.195",
    "employee_id": "EMP-730155",  # a custom pattern from the drift config
}


def forms(value: str) -> set[str]:
    """The value as typed, lower-cased, and its digits run together (how a number could be stored)."""
    digits = re.sub(r"\D", "", value)
    return {value, value.lower(), *([digits] if len(digits) >= 8 else [])}


def leaks(root: Path) -> list[str]:
    """Every (file, value) where a planted value appears: raw bytes, and the cells of Parquet tables
    (compressed, so a byte scan alone could miss them)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        blobs = [path.read_bytes()]
        if path.suffix == ".parquet":
            blobs.append(pd.read_parquet(path).to_json().encode())
        for value in PLANTED.values():
            for form in forms(value):
                if any(form.encode() in blob or form.encode("utf-16-le") in blob for blob in blobs):
                    found.append(f"{path.relative_to(root)}: {form}")
    return found


def own_home(folder: Path, monkeypatch: pytest.MonkeyPatch, *, embedded: bool) -> Settings:
    """A home of the test's own (its cache and reports); ``embedded``: its own MLflow store there too."""
    from embedops.core.settings import configure

    monkeypatch.setenv("EMBEDOPS_HOME", str(folder))
    if embedded:
        for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            monkeypatch.delenv(variable, raising=False)
    return configure()


@pytest.fixture
def home(store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An embedded store of this test's own: everything a job writes is under one folder to scan."""
    from embedops.core.settings import configure

    yield own_home(tmp_path / "home", monkeypatch, embedded=True).home
    monkeypatch.undo()
    configure()  # back to the session's store


def test_planted_personal_data_reaches_no_file_a_drift_retrain_or_shadow_job_writes(
    home: Path, tiny_model: Path, tmp_path: Path, unique_name: str
) -> None:
    name, corpus = unique_name, f"hc-{unique_name[-6:]}"
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial")[0] == 0
    rng = random.Random(0)
    drifted = [" ".join(rng.choices(BIO, k=rng.randint(4, 9))) for _ in range(150)] + QUESTIONS[:140]
    personal = [
        f"please update my e-mail to {PLANTED['email']} thanks",
        f"card {PLANTED['card']} was charged twice",
        f"pay salaries into {PLANTED['iban']} from next month",
        f"call me back on {PLANTED['phone']} today",
        f"login blocked from {PLANTED['ip']} again",
        f"employee {PLANTED['employee_id']} cannot see payslips",
    ]
    stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    current = write_jsonl(tmp_path / "current.jsonl", [{"text": t, "ts": stamp} for t in drifted + personal * 2])
    reference = write_jsonl(tmp_path / "reference.jsonl", [{"text": t} for t in QUESTIONS + TITLES])
    (tmp_path / "drift.yaml").write_text(
        "current_size: 400\nreference_size: 450\nreport: always\n"
        "trigger: {min_window: 100, consecutive: 2, high_threshold: 0.6, cooldown_hours: 24}\n"
        "redaction: {custom: [{name: employee_id, pattern: 'EMP-\\d{6}'}], phone_regions: [US, GB]}\n"
    )
    config = str(tmp_path / "drift.yaml")
    code, result, err = cli(
        "drift", name, "--current", str(current), "--reference", str(reference), "--config", config,
        "--retrain-config", str(retrain_config(tmp_path, name)),
    )  # fmt: skip
    assert code == 4, err
    assert result["report_logged"] and result["retrain"]["version"] == "2"
    counts = {kind: 2 for kind in PLANTED} | {"texts": 12, "dropped": 0}
    assert result["window"]["redactions"] == counts
    drift_run = MlflowClient().get_run(result["run_id"])
    assert Path(urlparse(drift_run.info.artifact_uri).path).is_relative_to(home)  # the artifact store is scanned too
    assert drift_run.data.metrics["redacted_email"] == 2 and drift_run.data.metrics["redacted_employee_id"] == 2
    page = Path(MlflowClient().download_artifacts(result["run_id"], "drift/drift_report.html", str(tmp_path)))
    assert "personal data redacted before use: 2 card, 2 email, 2 employee_id" in page.read_text()

    # The same window through a shadow comparison: query texts go into its table, summary and reports.
    assert cli("corpus", "add", corpus, str(HELPCENTER))[0] == 0
    for version in ("1", "2"):
        assert cli("index", "build", name, "--version", version, "--corpus", corpus)[0] == 0
    code, shadow, err = cli(
        "shadow", name, "--candidate", "2", "--traffic", str(current), "--corpus", corpus, "--config", config
    )
    assert code == 0, err
    assert shadow["traffic"]["redactions"] == counts and Path(shadow["report"]).is_relative_to(home)
    table = pd.read_parquet(
        MlflowClient().download_artifacts(shadow["run_id"], "shadow_queries.parquet", str(tmp_path))
    )
    assert {"call me back on <PHONE> today", "employee <EMPLOYEE_ID> cannot see payslips"} <= set(table["query"])

    # Everything under the home: the MLflow database and artifacts, the ledger, caches, indexes, reports.
    assert (home / "mlflow.db").is_file() and (home / "ledger.db").is_file() and any((home / "cache").rglob("*.npy"))
    assert leaks(home) == []
    # The scan itself finds a value where one is (so the clean result above means something).
    write_jsonl(home / "canary.jsonl", [{"text": personal[1]}])
    assert leaks(home) == [f"canary.jsonl: {PLANTED['card']}"]


def test_purge_removes_traffic_past_retention_records_it_and_drift_still_works(
    stack, tiny_model: Path, tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On both stacks (the server's artifacts are deleted through its artifact API). The server's store is
    shared with other tests, so what a purge finds of their runs is left out of the counts checked here."""
    settings = own_home(tmp_path / "home", monkeypatch, embedded=stack.name == "embedded")
    name = unique_name
    assert cli("register", str(tiny_model), "--name", name)[0] == 0
    code, _, err = cli("promote", name, "--version", "1", "--initial")
    assert code == 0, err
    now = dt.datetime.now(dt.UTC)

    def window(path: Path, age_days: float, texts: list[str]) -> Path:
        stamp = (now - dt.timedelta(days=age_days)).isoformat()
        return write_jsonl(path, [{"text": q, "ts": stamp} for q in texts])

    old, recent = (
        window(tmp_path / "old.jsonl", 40, QUESTIONS[:40]),
        window(tmp_path / "recent.jsonl", 2, QUESTIONS[40:80]),
    )
    reference = write_jsonl(tmp_path / "reference.jsonl", [{"text": t} for t in TITLES])
    keep = tmp_path / "keep.yaml"  # a long retention, so both windows' data is stored
    keep.write_text("report: always\nretention_days: 3650\ntrigger: {min_window: 10}\n")
    runs = {}
    for label, path in (("old", old), ("recent", recent)):
        code, result, err = cli(
            "drift", name, "--current", str(path), "--reference", str(reference), "--config", str(keep)
        )
        assert code in (0, 4), err
        assert result["retention"] == {"days": 3650, "removed": {}, "error": None}
        runs[label] = result["run_id"]
    client = MlflowClient()
    cached = {json.loads(p.read_text()).get("traffic", {}).get("oldest"): p for p in settings.cache_dir.glob("*.json")}
    assert len(cached) == 3  # the old window, the recent one, the reference (no times: aged from when it was written)
    (old_oldest,) = [o for o in cached if o and o < (now - dt.timedelta(days=30)).isoformat()]

    code, report, _ = cli("doctor")
    past = [f for f in report["findings"] if f["kind"] == "traffic_past_retention"]
    assert {f["subject"] for f in past} == {"cached traffic vectors", "run artifacts"}

    def mine(result: dict) -> list[tuple[str, str]]:
        ours = set(runs.values())
        return sorted(
            (i["kind"], i["ref"])
            for i in result["items"]
            if i["ref"].split(":")[0] in ours or i["kind"] == "cache_entry"
        )

    code, dry, err = cli("traffic", "purge", "--older-than", "30d", "--dry-run")
    assert code == 0, err
    expected = [("cache_entry", str(cached[old_oldest].with_suffix(".npy"))), ("run_artifacts", f"{runs['old']}:drift")]
    assert mine(dry) == expected and not dry["recorded"]
    assert [a.path for a in client.list_artifacts(runs["old"])] == ["drift"]  # nothing removed yet

    code, purged, err = cli("traffic", "purge", "--older-than", "30d", "--actor", "dpo@example.com")
    assert code == 0, err
    assert mine(purged) == expected and purged["recorded"]
    assert client.list_artifacts(runs["old"]) == [] and PURGED_TAG in client.get_run(runs["old"]).data.tags
    assert [a.path for a in client.list_artifacts(runs["recent"])] == ["drift"]
    remaining = {json.loads(p.read_text())["traffic"]["oldest"] for p in settings.cache_dir.glob("*.json")}
    assert len(remaining) == 2 and all(
        o is None or o.startswith(str((now - dt.timedelta(days=2)).date())) for o in remaining
    )
    assert len(list(settings.cache_dir.glob("*.npy"))) == 2
    (row,) = [r for r in PurgeLog(Ledger(settings.ledger_url)).rows() if r["actor"] == "dpo@example.com"]
    assert (row["trigger"], row["cache_entries"], row["older_than_days"]) == ("command", 1, 30)
    assert runs["old"] in row["detail"] and runs["recent"] not in row["detail"]
    code, report, _ = cli("doctor")
    assert not [f for f in report["findings"] if f["kind"] == "traffic_past_retention"]

    # A drift job afterwards, under the default 30 days: it works on the old window again, caches none of
    # it, and purges its own page of that window as it finishes (recorded as the drift job's).
    report_only = tmp_path / "default.yaml"
    report_only.write_text("report: always\ntrigger: {min_window: 10}\n")
    code, again, err = cli(
        "drift", name, "--current", str(old), "--reference", str(reference), "--config", str(report_only)
    )
    assert code in (0, 4), err
    assert again["retention"]["days"] == 30 and again["retention"]["removed"]["run_artifacts"] >= 1
    assert client.list_artifacts(again["run_id"]) == [] and len(list(settings.cache_dir.glob("*.npy"))) == 2
    assert PurgeLog(Ledger(settings.ledger_url)).rows()[-1]["trigger"] == "drift job"
