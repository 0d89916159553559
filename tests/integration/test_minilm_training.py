"""The real all-MiniLM-L6-v2, end to end: fine-tune, register, load back as both MLflow flavors."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from evaluation.models import load_sentence_transformer
from tests.conftest import REPO
from training.config import load_config
from training.job import run_training

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_minilm_fine_tune_registers_a_version_that_loads_as_both_flavors(store, unique_name: str) -> None:
    cfg = load_config(
        REPO / "examples" / "configs" / "train.yaml", max_steps=3, model_name=unique_name, experiment="integration"
    )
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
