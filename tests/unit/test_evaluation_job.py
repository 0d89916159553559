"""The evaluation job: embedding cache, CIs, latency, bf16, MLflow run and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from embedops.core.errors import ModelError
from evaluation.cache import CacheKey, EmbeddingCache
from evaluation.job import run_evaluation
from evaluation.latency import latency_profile
from tests.conftest import HELPCENTER
from tests.keyword_encoder import KeywordEncoder

runner = CliRunner()
KEY = CacheKey("m" * 64, "g" * 64, 128, "fp32")


def test_cache_round_trip_and_key_isolation(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    vectors = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert cache.load(KEY, 5) is None
    cache.save(KEY, vectors)
    assert np.array_equal(cache.load(KEY, 5), vectors)
    for other in (
        CacheKey("x" * 64, KEY.golden_digest, 128, "fp32"),
        CacheKey(KEY.model_digest, "y" * 64, 128, "fp32"),
        CacheKey(KEY.model_digest, KEY.golden_digest, 256, "fp32"),
        CacheKey(KEY.model_digest, KEY.golden_digest, 128, "bf16"),
    ):
        assert cache.load(other, 5) is None
    assert cache.load(KEY, 6) is None  # a corpus of another size can never reuse it


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_corrupt_cache_entries_are_ignored(tmp_path: Path, damage: str) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.save(KEY, np.ones((5, 4), dtype=np.float32))
    data = next(tmp_path.glob("*.npy"))
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[:-8])
    elif damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[-1] ^= 0xFF
        data.write_bytes(bytes(raw))
    else:
        next(tmp_path.glob("*.json")).write_text("{not json")
    assert cache.load(KEY, 5) is None


def test_evaluation_reuses_the_cache_and_gets_the_same_numbers(tiny_model: Path, tmp_path: Path) -> None:
    cold, cold_result = run_evaluation(tiny_model, HELPCENTER, cache_dir=tmp_path, progress=False)
    warm, warm_result = run_evaluation(tiny_model, HELPCENTER, cache_dir=tmp_path, progress=False)
    assert not cold.cache_hit and warm.cache_hit
    assert warm.metrics == cold.metrics and warm_result.per_query == cold_result.per_query
    low, high = cold.ci["ndcg_at_10"]
    assert low <= cold.metrics["ndcg_at_10"] <= high
    # A corrupted entry is recomputed, and the numbers do not move.
    entry = next(tmp_path.glob("*.npy"))
    entry.write_bytes(entry.read_bytes()[:100])
    again, _ = run_evaluation(tiny_model, HELPCENTER, cache_dir=tmp_path, progress=False)
    assert not again.cache_hit and again.metrics == cold.metrics


def test_bf16_scores_stay_close_to_fp32(tiny_model: Path) -> None:
    fp32, _ = run_evaluation(tiny_model, HELPCENTER, progress=False)
    bf16, _ = run_evaluation(tiny_model, HELPCENTER, precision="bf16", progress=False)
    assert bf16.precision in ("bf16", "fp32")  # fp32 where the CPU has no native bf16
    assert abs(bf16.metrics["ndcg_at_10"] - fp32.metrics["ndcg_at_10"]) < 0.05


def test_latency_profile_orders_its_percentiles() -> None:
    profile = latency_profile(KeywordEncoder(["a"]), ["a b", "c"], calls=50, throughput_texts=64)
    assert 0 < profile.p50_ms <= profile.p95_ms <= profile.p99_ms and profile.calls == 50
    assert profile.throughput_texts_per_s > 0 and set(profile.metrics()) == {
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "throughput_texts_per_s",
    }


def test_an_unresolvable_model_uri_is_a_model_error(store) -> None:
    with pytest.raises(ModelError, match="cannot resolve model URI 'models:/no-such-model/1'"):
        run_evaluation("models:/no-such-model/1", HELPCENTER, progress=False)


def test_evaluate_cli_logs_a_run_with_the_per_query_table(store, tiny_model: Path) -> None:
    shutil.rmtree(store.cache_dir, ignore_errors=True)  # other tests share the store: start cold
    result = runner.invoke(
        app, ["evaluate", "--model", str(tiny_model), "--golden", str(HELPCENTER), "--latency-calls", "10", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["n_queries"] == 105 and payload["split"] == "test" and payload["cache_hit"] is False
    assert set(payload["ci"]) == set(payload["metrics"]) and payload["latency"]["latency_p99_ms"] > 0
    client = MlflowClient()
    run = client.get_run(payload["run_id"])
    assert run.data.tags["golden_digest"] == payload["golden_digest"]
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(payload["metrics"]["ndcg_at_10"])
    assert "ndcg_at_10_ci_low" in run.data.metrics and "latency_p95_ms" in run.data.metrics
    table = pd.read_parquet(client.download_artifacts(payload["run_id"], "evaluation/per_query.parquet"))
    assert len(table) == 105 and table["ndcg_at_10"].mean() == pytest.approx(payload["metrics"]["ndcg_at_10"])

    again = json.loads(
        runner.invoke(
            app, ["evaluate", "--model", str(tiny_model), "--golden", str(HELPCENTER), "--latency-calls", "0", "--json"]
        ).stdout
    )
    assert again["cache_hit"] is True and again["metrics"] == payload["metrics"]


def test_evaluate_cli_table_and_errors(store, tiny_model: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--model", str(tiny_model), "--golden", str(HELPCENTER), "--latency-calls", "0"]
    )
    assert result.exit_code == 0 and "ndcg_at_10" in result.stdout and "95% CI" in result.stdout
    missing = runner.invoke(
        app, ["evaluate", "--model", str(tiny_model), "--golden", str(HELPCENTER), "--split", "validation"]
    )
    assert missing.exit_code == 1 and "split file not found (available splits: dev, test, train)" in missing.stderr


def test_two_jobs_saving_the_same_cache_entry_at_once_both_succeed(tmp_path: Path) -> None:
    """Two gates of the same production version write its entry together (seen in CI as a
    FileNotFoundError when both renamed one shared temporary file): every save succeeds, the entry reads back."""
    import threading

    cache = EmbeddingCache(tmp_path / "cache")
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    errors: list[BaseException] = []

    def save_many() -> None:
        try:
            for _ in range(50):
                cache.save(KEY, array)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save_many) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert np.array_equal(cache.load(KEY, 3), array)
    assert not list((tmp_path / "cache").glob("*.tmp"))
