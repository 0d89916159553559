"""Property-based tests: no input makes a loader, parser or validator raise anything but our typed errors.

1,000 examples per target. Inputs are both raw bytes (anything a broken upload can hold) and
near-miss structures (valid JSON/YAML with the wrong shapes), which reach deeper code paths.
"""

from __future__ import annotations

import gzip
import json
import os
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evaluation.errors import EmbedopsError
from evaluation.golden import load_golden_set
from evaluation.yamlconfig import build_config, read_yaml_mapping
from monitoring.config import DriftConfig
from monitoring.windows import read_window
from registry.names import validate_name
from registry.policy import GatePolicy
from training.config import TrainConfig
from training.data import load_training_data
from training.tune_config import load_tune_config

# CI draws the same examples every run (a red build always means a code change); HYPOTHESIS_PROFILE=explore
# draws fresh ones, as many as HYPOTHESIS_EXAMPLES, to hunt for new counterexamples.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "20000")))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
MANY = settings(max_examples=max(1000, settings.default.max_examples), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=8)
# Records that look like the real thing: the expected keys mixed with others, any JSON values.
record_keys = st.sampled_from(["anchor", "positive", "negative", "text", "ts", "_id", "title", "query", "x"])
records = st.dictionaries(record_keys, json_values, max_size=4)


def jsonl(rows: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@MANY
@given(st.text(max_size=80))
@example("model\n")  # found by this test: a "$"-anchored pattern let a trailing newline through
def test_names_are_either_safe_or_refused(name: str) -> None:
    try:
        safe = validate_name(name)
    except EmbedopsError:
        return
    assert safe == name and len(name) <= 64 and ".." not in name
    assert not set(name) & {"/", "\\", "\0", ":", " "} and all(c in string.ascii_letters + string.digits + "._-"
                                                                for c in name)


@MANY
@given(payload=st.one_of(st.binary(max_size=300), st.lists(records, max_size=5).map(jsonl),
                         st.lists(json_values, max_size=4).map(jsonl)),
       suffix=st.sampled_from([".jsonl", ".csv", ".jsonl.gz", ".parquet"]), gzip_it=st.booleans())
def test_training_data_loader_raises_only_typed_errors(payload: bytes, suffix: str, gzip_it: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(gzip.compress(payload) if gzip_it and suffix.endswith(".gz") else payload)
        try:
            data = load_training_data(path, min_rows=1)
        except EmbedopsError:
            return
        assert len(data) >= 1 and all(isinstance(t, str) and t.strip() for row in data.rows for t in row)


@MANY
@given(corpus=st.one_of(st.binary(max_size=200), st.lists(records, max_size=4).map(jsonl)),
       queries=st.one_of(st.binary(max_size=200), st.lists(records, max_size=4).map(jsonl)),
       qrels=st.one_of(st.binary(max_size=200), st.lists(
           st.tuples(st.text(max_size=6), st.text(max_size=6), st.text(max_size=3)), max_size=4).map(
           lambda rows: ("query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rows)).encode())))
@example(corpus=b"", queries=b"", qrels=b"\t\tINF")  # found in CI: int(float("inf")) raised OverflowError
def test_golden_set_loader_raises_only_typed_errors(corpus: bytes, queries: bytes, qrels: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "qrels").mkdir()
        (root / "corpus.jsonl").write_bytes(corpus)
        (root / "queries.jsonl").write_bytes(queries)
        (root / "qrels" / "test.tsv").write_bytes(qrels)
        try:
            golden = load_golden_set(root, "test")
        except EmbedopsError:
            return
        assert golden.n_queries >= 1 and all(q in golden.queries for q in golden.qrels)


@MANY
@given(payload=st.one_of(st.binary(max_size=300), st.lists(records, max_size=5).map(jsonl)),
       timed=st.booleans())
def test_traffic_windows_raise_only_typed_errors(payload: bytes, timed: bool) -> None:
    import datetime as dt

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.jsonl"
        path.write_bytes(payload)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) if timed else None
        try:
            window = read_window(path, start=start, size=3)
        except EmbedopsError:
            return
        assert len(window.texts) <= 3 and all(isinstance(t, str) and t.strip() for t in window.texts)


yaml_docs = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
    st.dictionaries(st.sampled_from(["data", "epochs", "batch_size", "learning_rate", "loss", "min_delta", "alpha",
                                     "guards", "trigger", "current_size", "report", "model_name", "typo"]),
                    json_values, max_size=4).map(json.dumps),
)


@MANY
@given(text=yaml_docs, model=st.sampled_from([TrainConfig, GatePolicy, DriftConfig]))
@example(text='{"guards": {"\\ud800": 0.1}}', model=GatePolicy)  # found by this test: a lone surrogate
def test_config_files_raise_only_config_errors(text: str, model: type) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            build_config(model, read_yaml_mapping(path), source=str(path))
        except EmbedopsError:
            return


@MANY
@given(space=st.dictionaries(st.sampled_from(["learning_rate", "batch_size", "epochs", "bogus"]),
                             st.one_of(json_values, st.fixed_dictionaries(
                                 {"type": st.sampled_from(["float", "int", "categorical", "other"])},
                                 optional={"low": scalars, "high": scalars, "log": scalars,
                                           "choices": json_values})), max_size=3),
       objective=st.one_of(json_values, st.fixed_dictionaries({"metric": st.text(max_size=12)})))
def test_tune_configs_raise_only_config_errors(space: dict, objective: object) -> None:
    try:
        load_tune_config(None, {"data": "pairs.jsonl", "golden": "golden", "golden_split": "dev"},
                         search_space=space, objective=objective)
    except EmbedopsError:
        return
