"""Logging a sentence-transformers model to MLflow and registering it: shared by training and ``register``.

A version is created only after the logged model was loaded back from the store and embedded
finite vectors of the promised size, and it carries every contract tag from its creation.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from embedops.core.errors import ModelError
from evaluation.evaluator import encode
from evaluation.models import check_model_folder, download_model, load_sentence_transformer
from registry.contract import (
    MANIFEST_FILE,
    MANIFEST_TAG,
    folder_manifest,
    manifest_digest,
    save_tokenizer,
    tokenizer_sha256,
)

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo
    from sentence_transformers import SentenceTransformer

PROBE_TEXTS = ["How do I reset my password?", "Quarterly revenue grew by four percent.", "ok"]


def log_tokenizer(model: SentenceTransformer) -> str:
    """Log the tokenizer files under ``tokenizer/`` and return their sha256."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        files = save_tokenizer(model, Path(tmp))
        for f in files:
            mlflow.log_artifact(str(f), artifact_path="tokenizer")
        return tokenizer_sha256(files)


def pip_requirements() -> list[str]:
    """Pinned explicitly: MLflow's own guess takes seconds and pins a '+cpu' torch pip cannot find."""
    import mlflow
    import sentence_transformers
    import torch
    import transformers

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"transformers=={transformers.__version__}",
        f"sentence-transformers=={sentence_transformers.__version__}",
    ]


def embedding_dimension(model: SentenceTransformer) -> int:
    """The width of the model's vectors; a model that cannot say is not one a version can promise."""
    dim = model.get_embedding_dimension()
    if dim is None:
        raise ModelError("the model does not report its embedding dimension: not logging it")
    return dim


def log_model(model: SentenceTransformer) -> ModelInfo:
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(["a text"], np.zeros((1, embedding_dimension(model)), dtype=np.float32))
    info = mlflow.sentence_transformers.log_model(
        model, name="model", signature=signature, pip_requirements=pip_requirements()
    )
    return cast("ModelInfo", info)  # MLflow leaves log_model's return unannotated


def verify_logged_model(model_uri: str, dim: int) -> dict[str, str]:
    """Download the logged model once: check its shape (MLmodel, no pickle, no custom code), load it
    and check it embeds, and return the sha256 manifest of every file. A version is registered only
    after this."""
    with tempfile.TemporaryDirectory() as tmp:
        root = download_model(model_uri, Path(tmp))
        folder = check_model_folder(root)
        manifest = folder_manifest(root)
        loaded = load_sentence_transformer(folder, device="cpu")
        vectors = encode(loaded, PROBE_TEXTS, batch_size=len(PROBE_TEXTS), progress=False, what="probe texts")
    if vectors.shape != (len(PROBE_TEXTS), dim):
        raise ModelError(
            f"the logged model returns vectors of shape {vectors.shape}, expected "
            f"({len(PROBE_TEXTS)}, {dim}): not registering it"
        )
    return manifest


def register_version(model_uri: str, name: str, run_id: str, tags: dict[str, str]) -> str:
    """Register with every contract tag set at creation, so no version exists without them."""
    import mlflow

    version = mlflow.register_model(model_uri, name, tags={**tags, "run_id": run_id})
    return str(version.version)


def log_verified_model(
    model: SentenceTransformer, *, base_model: str, extra_tags: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """In the active run: tokenizer files, the contract tags, the model; then load it back and check it.

    Returns the logged model's URI and the tags a registered version of it must carry.
    """
    import mlflow

    from registry.contract import contract_tags

    tags = contract_tags(model, tokenizer_hash=log_tokenizer(model), base_model=base_model) | (extra_tags or {})
    mlflow.set_tags(tags)
    info = log_model(model)
    tags[MANIFEST_TAG] = log_manifest(verify_logged_model(info.model_uri, embedding_dimension(model)))
    return info.model_uri, tags


def log_manifest(manifest: dict[str, str]) -> str:
    """Log the manifest as the run's ``model_manifest.json``; returns the manifest's own digest,
    which the version carries so the manifest cannot be swapped either."""
    import mlflow

    mlflow.log_dict(manifest, MANIFEST_FILE)
    return manifest_digest(manifest)
