"""The app each serving worker runs (``uvicorn --factory registry.serving_app:create_app``).

The copy it loads was verified by `embedops serve` a moment earlier; the worker checks it against
the registered manifest again (whose digest it was handed), so nothing that changed in between
runs, then loads it with remote code off and gives MLflow's scoring server the loaded model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedops.core.errors import ModelError
from evaluation.models import MLMODEL, check_model_folder, load_sentence_transformer
from registry.contract import manifest_digest, manifest_problems
from registry.serve import ENV_ALIAS, ENV_FOLDER, ENV_MANIFEST, ENV_MANIFEST_SHA, ENV_MODEL, ENV_VERSION

if TYPE_CHECKING:
    from fastapi import FastAPI


class TextEncoder:
    """The pyfunc contract of the sentence-transformers flavor (texts in, float32 vectors out),
    over a model embedops loaded: MLflow's scoring server parses requests and writes answers."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            texts = data.iloc[:, 0].tolist()
            if texts and isinstance(texts[0], list):  # {"inputs": [[...]]}: one column of lists
                texts = texts[0]
        elif isinstance(data, pd.Series | np.ndarray):
            texts = data.tolist()
        elif isinstance(data, str):
            texts = [data]
        else:
            texts = list(data)
        return np.asarray(self.model.encode(texts, **(params or {})), dtype=np.float32)


def checked_folder(folder: Path, manifest_file: Path, expected_sha256: str) -> Path:
    """The serving copy's weights folder, if every file still matches the registered manifest."""
    manifest = json.loads(manifest_file.read_text())
    if manifest_digest(manifest) != expected_sha256:
        raise ModelError(f"{manifest_file} is not the manifest registered with this version")
    problems = manifest_problems(manifest, folder)
    if problems:
        raise ModelError(f"{folder}: {'; '.join(problems[:5])} (changed since `embedops serve` verified it)")
    return check_model_folder(folder)


def create_app() -> FastAPI:
    from mlflow.models import Model
    from mlflow.pyfunc import PyFuncModel, scoring_server

    root = Path(os.environ[ENV_FOLDER])
    weights = checked_folder(root, Path(os.environ[ENV_MANIFEST]), os.environ[ENV_MANIFEST_SHA])
    model = load_sentence_transformer(weights, device="cpu")
    # MLmodel is read only for its signature (how requests parse); it was checked to name the plain flavor.
    pyfunc = PyFuncModel(model_meta=Model.load(str(root / MLMODEL)), model_impl=TextEncoder(model))
    app: FastAPI = scoring_server.init(pyfunc)  # MLflow leaves the return (a FastAPI app) unannotated
    served = {
        "model": os.environ[ENV_MODEL],
        "version": os.environ[ENV_VERSION],
        "alias": os.environ[ENV_ALIAS],
        "manifest_sha256": os.environ[ENV_MANIFEST_SHA],
    }

    @app.get("/model")
    async def which_model() -> dict[str, str]:
        return served

    return app
