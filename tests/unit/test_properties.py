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

from embedops.core.config import build_config, read_yaml_mapping
from embedops.core.errors import EmbedopsError
from embedops.core.names import validate_name
from evaluation.golden import load_golden_set
from monitoring.config import DriftConfig
from monitoring.windows import read_window
from registry.gate.policy import GatePolicy
from training.config import TrainConfig
from training.data import load_training_data
from training.tune_config import load_tune_config

# CI draws the same examples every run (a red build always means a code change); HYPOTHESIS_PROFILE=explore
# draws fresh ones, as many as HYPOTHESIS_EXAMPLES, to hunt for new counterexamples.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "20000")))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
MANY = settings(
    max_examples=max(1000, settings.default.max_examples), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
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
    assert not set(name) & {"/", "\\", "\0", ":", " "} and all(
        c in string.ascii_letters + string.digits + "._-" for c in name
    )


@MANY
@given(
    payload=st.one_of(
        st.binary(max_size=300), st.lists(records, max_size=5).map(jsonl), st.lists(json_values, max_size=4).map(jsonl)
    ),
    suffix=st.sampled_from([".jsonl", ".csv", ".jsonl.gz", ".parquet"]),
    gzip_it=st.booleans(),
)
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
@given(
    corpus=st.one_of(st.binary(max_size=200), st.lists(records, max_size=4).map(jsonl)),
    queries=st.one_of(st.binary(max_size=200), st.lists(records, max_size=4).map(jsonl)),
    qrels=st.one_of(
        st.binary(max_size=200),
        st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6), st.text(max_size=3)), max_size=4).map(
            lambda rows: ("query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rows)).encode()
        ),
    ),
)
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
@given(payload=st.one_of(st.binary(max_size=300), st.lists(records, max_size=5).map(jsonl)), timed=st.booleans())
def test_traffic_windows_raise_only_typed_errors(payload: bytes, timed: bool) -> None:
    import datetime as dt

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.jsonl"
        path.write_bytes(payload)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) if timed else None
        try:
            window = read_window(path, start=start, size=3, min_texts=1)  # min_texts: reach the success path too
        except EmbedopsError:
            return
        assert len(window.texts) <= 3 and all(isinstance(t, str) and t.strip() for t in window.texts)


yaml_docs = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
    st.dictionaries(
        st.sampled_from(
            [
                "data",
                "epochs",
                "batch_size",
                "learning_rate",
                "loss",
                "min_delta",
                "alpha",
                "guards",
                "trigger",
                "current_size",
                "report",
                "model_name",
                "typo",
            ]
        ),
        json_values,
        max_size=4,
    ).map(json.dumps),
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
@given(
    space=st.dictionaries(
        st.sampled_from(["learning_rate", "batch_size", "epochs", "bogus"]),
        st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"type": st.sampled_from(["float", "int", "categorical", "other"])},
                optional={"low": scalars, "high": scalars, "log": scalars, "choices": json_values},
            ),
        ),
        max_size=3,
    ),
    objective=st.one_of(json_values, st.fixed_dictionaries({"metric": st.text(max_size=12)})),
)
def test_tune_configs_raise_only_config_errors(space: dict, objective: object) -> None:
    try:
        load_tune_config(
            None,
            {"data": "pairs.jsonl", "golden": "golden", "golden_split": "dev"},
            search_space=space,
            objective=objective,
        )
    except EmbedopsError:
        return


# Invalid Unicode, the two ways it reaches a loader: a JSON/YAML "\ud800" escape, which decodes to a lone
# surrogate that UTF-8 (and so every tokenizer) cannot encode, and raw bytes that are not UTF-8 (the UTF-8
# form of a surrogate among them). It sits inside otherwise ordinary text of one field of one row.
BAD = "@@BAD@@"  # where the raw bytes go once the file is serialized
plain = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="@"), max_size=8)
lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
raw_bad_bytes = st.one_of(
    st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]),
    # no line breaks: they would move the bad bytes to another line than the row's
    st.binary(min_size=1, max_size=4).filter(lambda b: not _is_utf8(b"a" + b + b"a") and not set(b) & set(b"\r\n")),
)
poison = st.one_of(st.tuples(st.just("escape"), lone_surrogates), st.tuples(st.just("bytes"), raw_bad_bytes))
# What the tests below draw for the poisoned field: its text around the bad value (see poisoned()), and the value.
POISONED_FIELD = {"prefix": plain, "suffix": plain, "bad": poison}


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def poisoned(prefix: str, bad: tuple[str, str | bytes], suffix: str) -> str:
    """The field's text: the surrogate itself, or the placeholder the raw bytes replace."""
    kind, value = bad
    return prefix + (value if kind == "escape" else BAD) + suffix  # type: ignore[operator]


def serialize(text: str, bad: tuple[str, str | bytes]) -> bytes:
    # surrogatepass: a lone surrogate outside a JSON escape (a CSV cell) is written as its UTF-8 form, invalid too.
    raw = text.encode("utf-8", "surrogatepass")
    return raw.replace(BAD.encode(), bad[1]) if bad[0] == "bytes" else raw  # type: ignore[arg-type]


def assert_typed_and_named(call: object, path: Path, row: int | None) -> None:
    try:
        call()  # type: ignore[operator]
    except EmbedopsError as exc:
        assert str(path) in str(exc), exc
        assert row is None or f"row {row}" in str(exc), exc
    else:
        raise AssertionError(f"invalid Unicode in {path} was loaded")


@MANY
@given(
    n_rows=st.integers(1, 4),
    data=st.data(),
    **POISONED_FIELD,
    fmt=st.sampled_from(["jsonl", "jsonl.gz", "csv", "parquet"]),
)
def test_invalid_unicode_in_training_data_is_a_typed_error_naming_the_row(
    n_rows: int, data: st.DataObject, prefix: str, suffix: str, bad: tuple, fmt: str
) -> None:
    import csv
    import io

    row = data.draw(st.integers(1, n_rows), label="row")
    column = data.draw(st.sampled_from(["anchor", "positive", "negative"]), label="column")
    rows = [{"anchor": f"question {i}", "positive": f"answer {i}", "negative": f"other {i}"} for i in range(n_rows)]
    rows[row - 1][column] = poisoned(prefix, bad, suffix)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        if fmt.startswith("jsonl"):
            raw = serialize("".join(json.dumps(r) + "\n" for r in rows), bad)
            path.write_bytes(gzip.compress(raw) if fmt.endswith(".gz") else raw)
            line = row
        elif fmt == "csv":
            out = io.StringIO(newline="")
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            path.write_bytes(serialize(out.getvalue(), bad))
            line = row + 1  # the header is line 1
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            # Arrow stores string bytes unchecked: the way a bad exporter's invalid UTF-8 arrives.
            table = {
                c: pa.array([serialize(r[c], bad) for r in rows], type=pa.binary()).view(pa.string()) for c in rows[0]
            }
            pq.write_table(pa.table(table), path)
            line = row
        assert_typed_and_named(lambda: load_training_data(path, min_rows=1), path, line)


@MANY
@given(
    n_rows=st.integers(1, 3),
    data=st.data(),
    **POISONED_FIELD,
    target=st.sampled_from(
        [
            ("corpus.jsonl", "_id"),
            ("corpus.jsonl", "title"),
            ("corpus.jsonl", "text"),
            ("queries.jsonl", "_id"),
            ("queries.jsonl", "text"),
        ]
    ),
    as_training_data=st.booleans(),
)
def test_invalid_unicode_in_a_golden_set_is_a_typed_error_naming_the_row(
    n_rows: int,
    data: st.DataObject,
    prefix: str,
    suffix: str,
    bad: tuple,
    target: tuple[str, str],
    as_training_data: bool,
) -> None:
    row = data.draw(st.integers(1, n_rows), label="row")
    corpus = [{"_id": f"d{i}", "title": f"title {i}", "text": f"text {i}"} for i in range(n_rows)]
    queries = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(n_rows)]
    file, field = target
    (corpus if file == "corpus.jsonl" else queries)[row - 1][field] = poisoned(prefix, bad, suffix)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "qrels").mkdir()
        for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
            (root / name).write_bytes(serialize("".join(json.dumps(r) + "\n" for r in rows), bad))
        (root / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(n_rows)))
        # A BEIR folder is training data too: the same check, through the training loader.
        load = (
            (lambda: load_training_data(root, split="test"))
            if as_training_data
            else (lambda: load_golden_set(root, "test"))
        )
        assert_typed_and_named(load, root / file, row)


@MANY
@given(
    n_lines=st.integers(1, 12),
    data=st.data(),
    **POISONED_FIELD,
    field=st.sampled_from(["text", "ts"]),
    timed=st.booleans(),
    folder=st.booleans(),
)
def test_invalid_unicode_in_traffic_is_a_typed_error_naming_the_line(
    n_lines: int, data: st.DataObject, prefix: str, suffix: str, bad: tuple, field: str, timed: bool, folder: bool
) -> None:
    import datetime as dt

    line = data.draw(st.integers(1, n_lines), label="line")
    records = [{"text": f"question {i}", "ts": "2026-11-05T10:00:00Z"} for i in range(n_lines)]
    records[line - 1][field] = poisoned(prefix, bad, suffix)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traffic.jsonl"
        path.write_bytes(serialize("".join(json.dumps(r) + "\n" for r in records), bad))
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) if timed else None
        assert_typed_and_named(lambda: read_window(Path(tmp) if folder else path, start=start, min_texts=1), path, line)


@MANY
@given(
    key=st.sampled_from(
        ["data", "base_model", "golden", "model_name", "report", "primary_metric", "policy", "train", "guards", "typo"]
    ),
    nested=st.booleans(),
    **POISONED_FIELD,
    loader=st.sampled_from(["train", "tune", "drift", "policy", "retrain"]),
)
def test_invalid_unicode_in_a_config_file_is_a_config_error(
    key: str, nested: bool, prefix: str, suffix: str, bad: tuple, loader: str
) -> None:
    from embedops.core.errors import ConfigError
    from embedops.pipelines import load_retrain_config
    from monitoring.config import load_drift_config
    from registry.gate.policy import load_policy
    from training.config import load_config

    value = poisoned(prefix, bad, suffix)
    values = {"data": "pairs.jsonl", key: {"x": [value]} if nested else value}
    loaders = {
        "train": load_config,
        "tune": lambda p: load_tune_config(p, {}),
        "drift": load_drift_config,
        "policy": load_policy,
        "retrain": load_retrain_config,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_bytes(serialize(json.dumps(values), bad))  # JSON is YAML; its "\ud800" escape is YAML's too
        try:
            loaders[loader](path)
        except ConfigError as exc:
            assert str(path) in str(exc), exc
        else:
            raise AssertionError("invalid Unicode in a config file was accepted")
