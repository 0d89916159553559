"""The app each serving worker runs (``uvicorn --factory registry.serving_app:create_app``).

The copy it loads was verified by `embedops serve` a moment earlier; the worker checks it against
the registered manifest again (whose digest it was handed), so nothing that changed in between
runs, then loads it with remote code off and gives MLflow's scoring server the loaded model.
Beside MLflow's ``/invocations`` (texts in, vectors out) it answers ``POST /search`` from the
version's own verified indexes, ``GET /health`` and ``GET /metrics`` (Prometheus), and follows the
alias through the ledger: when it moves, model and indexes swap together (``live_search``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedops.core.errors import EmbedopsError, ModelError
from evaluation.models import MLMODEL, check_model_folder, load_sentence_transformer
from registry.contract import manifest_digest, manifest_problems
from registry.serve import (
    ENV_ALIAS,
    ENV_CORPORA,
    ENV_FOLDER,
    ENV_MANIFEST,
    ENV_MANIFEST_SHA,
    ENV_MODEL,
    ENV_POLL_S,
    ENV_VERSION,
)

if TYPE_CHECKING:
    from fastapi import FastAPI


class TextEncoder:
    """The pyfunc contract of the sentence-transformers flavor (texts in, float32 vectors out),
    over a model embedops loaded: MLflow's scoring server parses requests and writes answers.
    ``model`` is a callable giving the model to use now (the one the alias points at)."""

    def __init__(self, model: Callable[[], Any]) -> None:
        self.current = model

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
        return np.asarray(self.current().encode(texts, **(params or {})), dtype=np.float32)


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

    from embedops.core.settings import configure
    from evaluation.cache import weights_digest
    from evaluation.job import LoadedModel
    from registry import store
    from registry.indexes import roots_of
    from registry.ledger import Ledger
    from registry.live_search import POLL_S, Follower, load_live
    from registry.serving_metrics import SearchMetrics

    root = Path(os.environ[ENV_FOLDER])
    weights = checked_folder(root, Path(os.environ[ENV_MANIFEST]), os.environ[ENV_MANIFEST_SHA])
    model = load_sentence_transformer(weights, device="cpu")
    name, alias = os.environ[ENV_MODEL], os.environ[ENV_ALIAS]
    settings = configure(create=False)
    roots = roots_of(settings)
    corpora = [c for c in os.environ.get(ENV_CORPORA, "").split(",") if c] or None
    info = store.get_version(name, os.environ[ENV_VERSION])
    loaded = LoadedModel(info.uri, model, weights_digest(weights))
    metrics = SearchMetrics()
    follower = Follower(
        name, alias, roots, Ledger(settings.ledger_url), load_live(roots, info, corpora, loaded), corpora, metrics
    )
    poll_s = float(os.environ.get(ENV_POLL_S) or POLL_S)
    if poll_s > 0:
        follower.watch(poll_s)

    # MLmodel is read only for its signature (how requests parse); it was checked to name the plain flavor.
    encoder = TextEncoder(lambda: follower.live.loaded.model)
    pyfunc = PyFuncModel(model_meta=Model.load(str(root / MLMODEL)), model_impl=encoder)
    app: FastAPI = scoring_server.init(pyfunc)  # MLflow leaves the return (a FastAPI app) unannotated
    add_search_routes(app, follower, metrics)
    return app


def add_search_routes(app: FastAPI, follower: Any, metrics: Any) -> None:
    """/model, /search, /health (replacing MLflow's, which knows nothing of indexes) and /metrics."""
    from fastapi import Body
    from fastapi.responses import JSONResponse, PlainTextResponse

    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != "/health"]

    @app.get("/model")
    def which_model() -> dict[str, str]:
        live = follower.live
        return {
            "model": follower.name,
            "version": live.version,
            "alias": follower.alias,
            "manifest_sha256": live.manifest_sha256,
        }

    @app.post("/search")
    def search(request: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008 (FastAPI's own idiom)
        queries, k, corpus = request.get("queries"), request.get("k", 10), request.get("corpus")
        if not isinstance(queries, list) or not queries or not all(isinstance(q, str) and q for q in queries):
            metrics.error("bad_request")
            return JSONResponse({"error": "queries must be a non-empty list of non-empty strings"}, status_code=400)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
            metrics.error("bad_request")
            return JSONResponse({"error": "k must be an integer from 1 to 1000"}, status_code=400)
        live = follower.live  # taken once: this request's model and indexes are one version's
        start = time.perf_counter()
        try:
            answers = live.search(corpus, queries, k)
        except EmbedopsError as exc:
            metrics.error("refused")
            return JSONResponse({"error": str(exc)}, status_code=409)
        seconds = time.perf_counter() - start
        metrics.observe(seconds, model_version=live.version, index_id=answers[0].index_id)
        return JSONResponse({"model": follower.name, "answers": [a.to_dict() for a in answers]})

    @app.get("/health")
    def health() -> JSONResponse:
        return JSONResponse(follower.health())

    @app.get("/metrics")
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")
