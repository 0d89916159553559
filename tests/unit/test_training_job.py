"""Fine-tune runs of the tiny model against a real MLflow store (sqlite + local artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from embedops.core.errors import ConfigError, DataError, ModelError
from evaluation.models import load_sentence_transformer
from tests.conftest import HELPCENTER, read_jsonl, write_jsonl
from training.config import load_config
from training.job import run_training


def quiet(_: str) -> None:
    pass


def train(store, tiny_model: Path, data: Path, name: str, **overrides) -> object:
    cfg = load_config(
        None,
        data=str(data),
        base_model=str(tiny_model),
        model_name=name,
        batch_size=8,
        max_steps=3,
        logging_steps=1,
        experiment="unit-tests",
        **overrides,
    )
    return run_training(cfg, artifact_root=store.artifact_root, progress=False, notify=quiet)


def versions(name: str) -> list:
    return MlflowClient().search_model_versions(f"name='{name}'")


def test_contrastive_run_logs_everything_and_registers_a_verified_version(
    store, tiny_model: Path, pairs_file: Path, unique_name: str
) -> None:
    result = train(store, tiny_model, pairs_file, unique_name, golden=str(HELPCENTER))
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["loss"] == "contrastive" and run.data.params["batch_size"] == "8"
    loss_curve = client.get_metric_history(result.run_id, "loss")
    assert [m.step for m in loss_curve] == [1, 2, 3] and all(np.isfinite(m.value) for m in loss_curve)
    assert client.get_metric_history(result.run_id, "learning_rate")
    assert 0 <= run.data.metrics["ndcg_at_10"] <= 1 and run.data.tags["golden_digest"] == result.golden_digest

    artifacts = {f.path for f in client.list_artifacts(result.run_id, "tokenizer")}
    assert {"tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json"} <= artifacts
    config = client.download_artifacts(result.run_id, "config/train.yaml")
    assert "loss: contrastive" in Path(config).read_text()

    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == result.data["digest"][:32]
    assert dataset_input.dataset.source and "pairs.jsonl" in dataset_input.dataset.source

    (version,) = versions(unique_name)
    assert str(version.version) == result.version == "1"
    tags = version.tags
    assert tags["embedding_dim"] == "32" and tags["normalize"] == "true" and tags["similarity"] == "cosine"
    assert tags["max_seq_length"] == "64" and len(tags["tokenizer_sha256"]) == 64
    assert tags["train_data_digest"] == result.data["digest"] and tags["golden_digest"] == result.golden_digest
    assert float(tags["ndcg_at_10"]) == pytest.approx(result.metrics["ndcg_at_10"], abs=1e-6)
    assert tags["base_model"] == str(tiny_model) and tags["run_id"] == result.run_id

    model = load_sentence_transformer(f"models:/{unique_name}/1", device="cpu")
    vectors = model.encode(["how do I export invoices"])
    assert vectors.shape == (1, 32) and np.isfinite(vectors).all()


def test_training_changes_the_weights(store, tiny_model: Path, pairs_file: Path, unique_name: str) -> None:
    result = train(store, tiny_model, pairs_file, unique_name, learning_rate=1e-3)
    base = load_sentence_transformer(tiny_model, device="cpu").encode(["setting up invoices"])
    tuned = load_sentence_transformer(result.model_uri, device="cpu").encode(["setting up invoices"])
    assert not np.allclose(base, tuned, atol=1e-4)


def test_triplet_run_with_cosine_distance(store, tiny_model: Path, tmp_path: Path, unique_name: str) -> None:
    triplets = write_jsonl(tmp_path / "t.jsonl", read_jsonl(HELPCENTER / "train_triplets.jsonl")[:24])
    result = train(store, tiny_model, triplets, unique_name, loss="triplet")
    assert MlflowClient().get_run(result.run_id).data.params["distance"] == "cosine"
    assert result.version == "1"


def test_hard_negative_mining_turns_pairs_into_triplets(
    store, tiny_model: Path, pairs_file: Path, unique_name: str
) -> None:
    # negatives_margin 0: a random tiny model scores every text alike, the margin would leave nothing.
    result = train(store, tiny_model, pairs_file, unique_name, loss="triplet", hard_negatives=True, negatives_margin=0)
    assert result.version == "1" and result.train["train_steps"] == 3


def test_cached_contrastive_and_no_register(store, tiny_model: Path, pairs_file: Path, unique_name: str) -> None:
    result = train(
        store, tiny_model, pairs_file, unique_name, loss="cached_contrastive", mini_batch_size=4, register_version=False
    )
    assert result.version is None and versions(unique_name) == []
    assert result.model_uri.startswith("models:/m-")


def test_triplet_loss_without_negatives_is_refused_before_training(
    store, tiny_model: Path, pairs_file: Path, unique_name: str
) -> None:
    with pytest.raises(ConfigError, match="needs a 'negative' column"):
        train(store, tiny_model, pairs_file, unique_name, loss="triplet")
    assert versions(unique_name) == []


def test_a_model_that_produces_nan_fails_its_run_and_registers_nothing(
    store, tiny_model: Path, pairs_file: Path, tmp_path: Path, unique_name: str
) -> None:
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_model.rglob("*"):
        if f.is_file():
            (broken / f.relative_to(tiny_model)).parent.mkdir(parents=True, exist_ok=True)
            (broken / f.relative_to(tiny_model)).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    key = next(k for k in weights if "embeddings.LayerNorm.weight" in k)
    weights[key][:] = float("nan")
    save_file(weights, broken / "model.safetensors")

    with pytest.raises(ModelError, match="NaN/Inf"):
        train(store, broken, pairs_file, unique_name)
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("unit-tests").experiment_id],
        filter_string="attributes.status = 'FAILED'",
    )
    assert any(r.data.params.get("model_name") == unique_name for r in runs)
    assert versions(unique_name) == []


def folder_with(root: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = root / name
    folder.mkdir()
    for file, content in files.items():
        (folder / file).write_bytes(content)
    return folder


@pytest.mark.parametrize(
    "files, message",
    [
        (None, "model folder not found"),
        ({"config.json": b"{}", "pytorch_model.bin": b"pickle"}, "pickle weights"),
        ({"config.json": b"{}"}, "no \\*.safetensors"),
    ],
)
def test_bad_base_models_are_refused(
    store, pairs_file: Path, tmp_path: Path, unique_name: str, files: dict | None, message: str
) -> None:
    base = tmp_path / "missing" if files is None else folder_with(tmp_path, "base", files)
    with pytest.raises(ModelError, match=message):
        train(store, base, pairs_file, unique_name)
    assert versions(unique_name) == []


def test_bad_data_is_refused_before_a_run_starts(store, tiny_model: Path, tmp_path: Path, unique_name: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "a", "doc": "b"}) + "\n")
    before = len(MlflowClient().search_runs([MlflowClient().get_experiment_by_name("unit-tests").experiment_id]))
    with pytest.raises(DataError, match="missing column"):
        train(store, tiny_model, bad, unique_name)
    after = len(MlflowClient().search_runs([MlflowClient().get_experiment_by_name("unit-tests").experiment_id]))
    assert after == before and versions(unique_name) == []


def test_sigterm_fails_the_run_like_ctrl_c_and_registers_nothing(
    store, tiny_model: Path, pairs_file: Path, unique_name: str
) -> None:
    """A real `embedops train` process, killed as systemd or Kubernetes stops a job: SIGTERM once its run
    is under way. SIGTERM used to end the process with its run RUNNING forever."""
    import os
    import signal
    import time

    from tests.conftest import start_embedops, train_argv

    client = MlflowClient()
    # Far more steps than the wait below can see finish: the run is still training when SIGTERM comes.
    job = start_embedops(
        *train_argv(pairs_file, tiny_model, unique_name, "--max-steps", "1000000", "--batch-size", "8"),
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 600  # generous: a loaded CI machine imports torch slowly
        runs: list = []
        while not runs:
            assert job.poll() is None, f"the job ended before its run appeared: {job.communicate()[1][-3000:]}"
            assert time.monotonic() < deadline, "no run appeared in 600 s"
            time.sleep(1)
            experiment = client.get_experiment_by_name("embedops-training")
            if experiment is not None:
                # Its params are logged inside the run, so the run's lifecycle already owns SIGTERM.
                runs = client.search_runs(
                    [experiment.experiment_id], filter_string=f"params.model_name = '{unique_name}'"
                )
        job.send_signal(signal.SIGTERM)
        _, err = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 143, err[-3000:]  # 128 + SIGTERM, as a shell reports a terminated job
    assert "terminated (SIGTERM): the run is marked FAILED and nothing was registered" in err
    (run,) = runs
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert versions(unique_name) == []


def test_a_tracked_run_gives_back_the_previous_sigterm_handler(store) -> None:
    import signal

    from embedops.core.runs import ensure_experiment, tracked_run

    def mine(signum: int, frame: object) -> None:
        pass

    before = signal.signal(signal.SIGTERM, mine)
    try:
        with tracked_run(experiment_id=ensure_experiment("unit-tests", store.artifact_root)):
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


def test_an_experiment_created_by_a_concurrent_job_is_used_not_an_error(
    store, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race two gates on a new store ran into: both look the experiment up, find none, create it."""
    import mlflow

    from embedops.core.runs import ensure_experiment

    other_job = mlflow.create_experiment(unique_name)  # the other job won the create
    real_lookup, lookups = mlflow.get_experiment_by_name, []

    def lookup(name: str):  # our first lookup ran before the other job's create
        lookups.append(name)
        return None if len(lookups) == 1 else real_lookup(name)

    monkeypatch.setattr(mlflow, "get_experiment_by_name", lookup)

    assert ensure_experiment(unique_name, store.artifact_root) == other_job and len(lookups) == 2


def test_retraining_from_a_registered_version_verifies_it_first(
    store, tiny_model: Path, pairs_file: Path, unique_name: str
) -> None:
    """Training from production (``models:/NAME/V``) goes through the same verified path as the gate."""
    from embedops.core.errors import ModelError
    from tests.unit.test_served_is_verified import auto_map, stored_root

    assert train(store, tiny_model, pairs_file, unique_name).version == "1"
    assert train(store, f"models:/{unique_name}/01", pairs_file, unique_name).version == "2"
    auto_map(stored_root(unique_name, "1"))
    with pytest.raises(ModelError, match=f"models:/{unique_name}/1: its files are missing or unusable.*auto_map"):
        train(store, f"models:/{unique_name}/1", pairs_file, unique_name)
    assert sorted(str(v.version) for v in versions(unique_name)) == ["1", "2"]  # nothing registered
