"""Traffic windows, drift scores and tokenizer signals on data whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedops.core.errors import DataError
from monitoring.detect import drift_scores
from monitoring.tokens import token_signals
from monitoring.windows import read_window


def traffic(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_windows_filter_by_time_and_sample_reproducibly(tmp_path: Path) -> None:
    import datetime as dt

    rows = [{"text": f"question {i}", "ts": f"2026-11-{1 + i % 20:02d}T10:00:00Z"} for i in range(100)]
    path = traffic(tmp_path / "t.jsonl", [*rows, {"text": "  ", "ts": "2026-11-05T10:00:00Z"}])
    start, end = dt.datetime(2026, 11, 5, tzinfo=dt.UTC), dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
    window = read_window(path, start=start, end=end)
    assert window.total == 25 and window.dropped_empty == 1
    a, b = read_window(path, size=10, seed=3), read_window(path, size=10, seed=3)
    assert a.texts == b.texts and a.digest == b.digest and len(a.texts) == 10
    assert read_window(path, size=10, seed=4).digest != a.digest


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "no usable texts"),
        ('{"text": ""}\n{"text": "   "}\n', r"no usable texts \(2 empty\)"),
        ('{"text": "a", "ts": "yesterday"}\n', "is not an ISO-8601 time"),
        ('{"query": "a"}\n', "expected an object with a 'text' field"),
        ('{"text": 5}\n', "expected text, got int"),
    ],
)
def test_bad_windows_are_data_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_window(path)


def test_same_distribution_scores_near_half_and_a_shift_scores_high() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(1500, 32))
    same = rng.normal(size=(1500, 32))
    shifted = np.vstack([rng.normal(size=(1200, 32)), rng.normal(loc=1.5, size=(300, 32))])  # 20% new topic
    quiet = drift_scores(reference, same)
    loud = drift_scores(reference, shifted)
    assert quiet.auc < 0.55 and quiet.ks_p_value > 0.01
    assert loud.auc > 0.6 and loud.ks_p_value < 1e-6 and loud.ks_dimensions > 20


def test_token_signals_count_unknown_tokens_and_truncation(tiny_model: Path) -> None:
    from evaluation.models import load_sentence_transformer

    tokenizer = load_sentence_transformer(tiny_model, device="cpu").tokenizer
    clean = token_signals(tokenizer, ["how do i export invoices"], 64)
    assert clean.unknown_token_rate == 0.0 and clean.truncation_rate == 0.0
    odd = token_signals(tokenizer, ["invoice ©©©", "how " * 100], 64)
    assert 0 < odd.unknown_token_rate < 1 and odd.truncation_rate == 0.5


def test_a_model_returning_nan_stops_the_drift_job_with_a_model_error(tmp_path: Path) -> None:
    from embedops.core.errors import ModelError
    from evaluation.job import LoadedModel
    from monitoring.job import embed_window
    from tests.keyword_encoder import KeywordEncoder

    encoder = KeywordEncoder(["invoice", "tax"], fail_on="tax")
    encoder.max_seq_length = 128  # type: ignore[attr-defined]
    window = read_window(traffic(tmp_path / "t.jsonl", [{"text": "invoice"}, {"text": "tax return"}]), min_texts=1)
    with pytest.raises(ModelError, match="NaN/Inf vectors for 1 of 2 current texts"):
        embed_window(
            LoadedModel("kw", encoder, "d" * 64), window, precision="fp32", cache=None, progress=False, what="current"
        )


def test_a_line_without_ts_is_an_error_when_a_time_range_is_given(tmp_path: Path) -> None:
    import datetime as dt

    rows = [{"text": f"question {i}", "ts": "2026-11-05T10:00:00Z"} for i in range(12)]
    path = traffic(tmp_path / "t.jsonl", [*rows[:5], {"text": "no time"}, *rows[5:]])
    with pytest.raises(
        DataError,
        match=r"row 6, field 'ts': no 'ts' but a time range \(--start/--end\) was given: "
        "add an ISO-8601 'ts' to every line, or choose the window by file",
    ) as info:
        read_window(path, start=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert str(path) in str(info.value)
    assert read_window(path).total == 13  # chosen by file, a line without ts counts


def test_a_lone_surrogate_in_traffic_names_the_line(tmp_path: Path) -> None:
    path = traffic(tmp_path / "t.jsonl", [{"text": "fine"}, {"text": "broken \ud800"}])
    with pytest.raises(DataError, match=r"row 2, field 'text': invalid Unicode: lone surrogate U\+D800"):
        read_window(path)


def test_windows_too_small_to_score_are_refused_before_embedding(tmp_path: Path) -> None:
    from monitoring.windows import MIN_WINDOW_TEXTS

    path = traffic(tmp_path / "t.jsonl", [{"text": "the only question"}])
    with pytest.raises(
        DataError,
        match=f"the window has 1 texts, fewer than the {MIN_WINDOW_TEXTS} a drift score needs: widen the time range",
    ):
        read_window(path)
    ten = traffic(tmp_path / "ten.jsonl", [{"text": f"question {i}"} for i in range(MIN_WINDOW_TEXTS)])
    assert len(read_window(ten).texts) == MIN_WINDOW_TEXTS
    with pytest.raises(DataError, match="the window has 3 texts"):  # a sample smaller than the minimum
        read_window(ten, size=3)


def test_drift_scores_refuse_a_one_text_window_and_never_return_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-text window once scored AUC nan, which compared below the threshold: "no drift", exit 0."""
    from monitoring import detect

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50, 8))
    with pytest.raises(DataError, match="current window has 1 texts, fewer than the 10 a drift score needs"):
        drift_scores(reference, rng.normal(size=(1, 8)))
    monkeypatch.setattr(detect, "classifier_auc", lambda reference, current: float("nan"))
    with pytest.raises(
        DataError,
        match=r"drift score is undefined \(AUC nan\) for windows of 50 reference and 20 "
        "current texts",
    ):
        drift_scores(reference, rng.normal(size=(20, 8)))


def test_drift_config_refuses_samples_below_the_window_minimum(tmp_path: Path) -> None:
    from embedops.core.errors import ConfigError
    from monitoring.config import load_drift_config

    config = tmp_path / "drift.yaml"
    config.write_text("current_size: 1\n")
    with pytest.raises(ConfigError, match="current_size: Input should be greater than or equal to 10"):
        load_drift_config(config)


def test_a_report_that_cannot_be_built_costs_the_report_not_the_drift_run(store) -> None:
    import mlflow

    from monitoring.job import log_report
    from monitoring.windows import MIN_WINDOW_TEXTS

    # Two windows of the smallest size drift accepts (10 texts each): too few points for Evidently's
    # t-SNE picture (perplexity 30 needs more than 30 samples).
    rng = np.random.default_rng(0)
    reference, current = (rng.normal(size=(MIN_WINDOW_TEXTS, 8)).astype(np.float32) for _ in range(2))
    with mlflow.start_run() as run:
        assert log_report(reference, current, threshold=0.55) is False
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert "perplexity" in tags["report_error"]
    assert not mlflow.MlflowClient().list_artifacts(run.info.run_id, "drift")


def test_a_window_knows_the_time_it_covers(tmp_path: Path) -> None:
    import datetime as dt

    rows = [{"text": f"question {i}", "ts": f"2026-11-{10 + i % 5:02d}T08:00:00Z"} for i in range(20)]
    path = traffic(tmp_path / "t.jsonl", rows)
    whole = read_window(path)
    assert (whole.start, whole.end) == (
        dt.datetime(2026, 11, 10, 8, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 14, 8, tzinfo=dt.UTC),
    )
    start, end = dt.datetime(2026, 11, 11, tzinfo=dt.UTC), dt.datetime(2026, 11, 14, tzinfo=dt.UTC)
    ranged = read_window(path, start=start, end=end)
    assert (ranged.start, ranged.end) == (start, end)  # the range asked for, not just the texts found
    untimed = read_window(traffic(tmp_path / "u.jsonl", [{"text": f"q {i}"} for i in range(12)]))
    assert untimed.start is None and untimed.end is None
