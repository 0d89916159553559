"""Load a sentence-transformers model from a local folder or an MLflow URI, safely.

Only safetensors weights are accepted and remote code is never trusted: a folder holding pickle
weights (``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``) is refused. MLflow URIs are downloaded and the
flavor's folder is loaded here rather than through ``mlflow.sentence_transformers.load_model``,
which would turn remote code on (it passes trust_remote_code as true).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
FLAVOR_FOLDER = "model.sentence_transformer"  # where mlflow.sentence_transformers keeps the model
URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/", "s3://", "gs://", "file://")


def is_mlflow_uri(ref: str) -> bool:
    return ref.startswith(URI_SCHEMES)


def check_model_folder(folder: Path) -> Path:
    """Return the folder that holds the model's weights, or raise a ModelError saying why not."""
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder}")
    if (folder / FLAVOR_FOLDER).is_dir():
        folder = folder / FLAVOR_FOLDER
    pickles = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                     if p.suffix in PICKLE_SUFFIXES and p.is_file())
    if pickles:
        raise ModelError(f"{folder} holds pickle weights ({', '.join(pickles[:3])}); embedops loads "
                         "safetensors only: convert with save_pretrained(safe_serialization=True)")
    if not any(folder.rglob("*.safetensors")):
        raise ModelError(f"{folder} has no *.safetensors weights: is it a sentence-transformers or "
                         "Hugging Face model folder?")
    if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
        raise ModelError(f"{folder} has neither config.json nor modules.json")
    return folder


def resolve_model_folder(ref: str | Path, download_dir: Path | None = None) -> Path:
    """A local folder for ``ref``: itself, or the MLflow model downloaded under ``download_dir``."""
    ref_str = str(ref)
    if is_mlflow_uri(ref_str):
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=ref_str, dst_path=str(download_dir) if download_dir else None)
        except MlflowException as exc:
            raise ModelError(f"cannot resolve model URI '{ref_str}': {exc.message}") from None
        return check_model_folder(Path(local))
    return check_model_folder(Path(ref_str).expanduser())


def load_sentence_transformer(ref: str | Path, *, device: str | None = None,
                              max_seq_length: int | None = None,
                              download_dir: Path | None = None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    folder = resolve_model_folder(ref, download_dir)
    try:
        model = SentenceTransformer(str(folder), device=device, trust_remote_code=False,
                                    local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load the model in {folder}: {exc}") from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model
