"""The real all-MiniLM-L6-v2, end to end: fine-tune, register, load back as both MLflow flavors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from evaluation.models import load_sentence_transformer
from tests.conftest import HELPCENTER, REPO
from training.config import load_config
from training.job import run_training

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_minilm_fine_tune_registers_a_version_that_loads_as_both_flavors(store, unique_name: str) -> None:
    cfg = load_config(REPO / "examples" / "configs" / "train.yaml", max_steps=3, model_name=unique_name,
                      experiment="integration")
    result = run_training(cfg, artifact_root=store.artifact_root, progress=False, notify=lambda _: None)
    assert result.version == "1" and 0.5 < result.metrics["ndcg_at_10"] <= 1.0

    tags = MlflowClient().get_model_version(unique_name, "1").tags
    assert (tags["embedding_dim"], tags["max_seq_length"], tags["base_model"]) == ("384", "256", "all-MiniLM-L6-v2")

    uri = f"models:/{unique_name}/{result.version}"
    texts = ["How do I pause a recurring invoice?", "Payrail transfers are on hold"]
    flavor = mlflow.sentence_transformers.load_model(uri)
    pyfunc = mlflow.pyfunc.load_model(uri)
    ours = load_sentence_transformer(uri, device="cpu")

    expected = ours.encode(texts)
    predicted = np.asarray(pyfunc.predict(texts))
    assert predicted.shape == (2, 384) and predicted.dtype == np.float32
    assert np.allclose(predicted, expected, atol=1e-5)
    assert np.allclose(flavor.encode(texts), expected, atol=1e-5)
    assert pyfunc.metadata.get_input_schema().input_types()[0].name == "string"


def test_mlproject_train_entry_point_runs_the_cli(tmp_path: Path, tiny_model: Path) -> None:
    """`mlflow run . -e train --env-manager local -P config=...` registers a version."""
    config = tmp_path / "train.yaml"
    config.write_text(f"data: {HELPCENTER / 'train_pairs.jsonl'}\nbase_model: {tiny_model}\nmax_steps: 2\n"
                      "batch_size: 8\nmodel_name: mlproject-model\nexperiment: mlproject\n")
    home = tmp_path / "home"
    uri = f"sqlite:///{home / 'mlflow.db'}"
    home.mkdir()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # Created up front with its artifacts in the home: `mlflow run` would put them in ./mlruns.
    client.create_experiment("mlproject", artifact_location=(home / "artifacts").as_uri())
    env = os.environ | {"EMBEDOPS_HOME": str(home), "MLFLOW_TRACKING_URI": uri,
                        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run([sys.executable, "-m", "mlflow", "run", ".", "-e", "train", "--env-manager", "local",
                          "--experiment-name", "mlproject", "-P", f"config={config}"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (version,) = client.search_model_versions("name='mlproject-model'")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED" and run.data.tags.get("mlflow.project.entryPoint") == "train"
