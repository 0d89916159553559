"""Load a sentence-transformers model from a local folder or an MLflow URI, safely.

Nothing a model folder carries may run code when it loads:
- weights are safetensors only: any pickle (by suffix or by its first bytes) anywhere is refused;
- remote or custom code is never trusted: ``auto_map`` in a config, ``*.py`` files, or a
  ``modules.json`` module outside sentence-transformers are refused (``strip_remote_code`` drops
  the first two on a copy, for a release manager who says so);
- a logged MLflow model (``MLmodel`` at its top) must be the plain sentence-transformers flavor:
  MLflow's own loader, the weights folder where it belongs, no ``python_model`` pickle, no code paths.

MLflow URIs are downloaded and the flavor's folder is loaded here rather than through
``mlflow.sentence_transformers.load_model``, which would turn remote code on (it passes
trust_remote_code as true).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedops.core.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
# Pickle protocols 2-5 open with 0x80 and the protocol; torch.save's zip container with "PK".
PICKLE_MAGIC = (*(bytes([0x80, protocol]) for protocol in range(2, 6)), b"PK\x03\x04")
FLAVOR_FOLDER = "model.sentence_transformer"  # where mlflow.sentence_transformers keeps the model
MLMODEL = "MLmodel"
LOADER_MODULE = "mlflow.sentence_transformers"
# What mlflow.sentence_transformers writes under python_function; anything else (python_model,
# cloudpickle_version, code, predict_fn) would make MLflow's loader run something of the model's.
PYFUNC_KEYS = frozenset({"loader_module", "data", "env", "python_version", "model_config"})
URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/", "s3://", "gs://", "file://")
STRIP_HINT = (
    "embedops never runs a model's own code: remove it, or register with --strip-remote-code "
    "to drop auto_map and *.py files (recorded on the version)"
)


def is_mlflow_uri(ref: str) -> bool:
    return ref.startswith(URI_SCHEMES)


def pickle_files(folder: Path) -> list[str]:
    """Files under ``folder`` that are pickles by name or by content (safetensors headers excepted)."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix in PICKLE_SUFFIXES:
            found.append(path.relative_to(folder).as_posix())
        elif path.suffix != ".safetensors":
            with open(path, "rb") as fh:
                if fh.read(4).startswith(PICKLE_MAGIC):
                    found.append(path.relative_to(folder).as_posix())
    return found


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc})") from None


def custom_code(folder: Path) -> list[str]:
    """Every way ``folder`` asks for code of its own: auto_map entries, Python files, foreign modules."""
    found = [
        f"auto_map in {p.relative_to(folder).as_posix()}"
        for p in sorted(folder.rglob("*.json"))
        if p.name != "modules.json" and isinstance(data := _json(p), dict) and "auto_map" in data
    ]
    found += [f"{p.relative_to(folder).as_posix()} (Python code)" for p in sorted(folder.rglob("*.py"))]
    if (folder / "modules.json").is_file():
        modules = _json(folder / "modules.json")
        for module in modules if isinstance(modules, list) else [modules]:
            kind = module.get("type", "") if isinstance(module, dict) else str(module)
            if not str(kind).startswith("sentence_transformers."):
                found.append(f"modules.json names module type '{kind}' (not part of sentence-transformers)")
    return found


def strip_remote_code(folder: Path, into: Path) -> tuple[Path, list[str]]:
    """A copy of ``folder`` without auto_map entries and Python files, and what was dropped.

    The copy is what gets loaded, scored and logged: with remote code off, the built-in architecture
    is what ran anyway, so dropping the pointers changes no vector."""
    shutil.copytree(folder, into, ignore=shutil.ignore_patterns("*.py"))
    dropped = [f"{p.relative_to(folder).as_posix()}" for p in sorted(folder.rglob("*.py"))]
    for path in sorted(into.rglob("*.json")):
        data = _json(path)
        if path.name != "modules.json" and isinstance(data, dict) and "auto_map" in data:
            del data["auto_map"]
            path.write_text(json.dumps(data, indent=2), encoding="utf-8")
            dropped.append(f"auto_map in {path.relative_to(into).as_posix()}")
    return into, dropped


def check_logged_model(root: Path) -> Path:
    """The flavor folder of a logged model whose ``MLmodel`` loads it the plain way, or a ModelError."""
    import yaml

    where = root / MLMODEL
    try:
        spec = yaml.safe_load(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(f"{where} is not readable YAML ({exc})") from None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    if not isinstance(flavors, dict) or set(flavors) != {"python_function", "sentence_transformers"}:
        found = sorted(flavors) if isinstance(flavors, dict) else "none"
        raise ModelError(f"{where}: flavors must be exactly python_function and sentence_transformers, found {found}")
    pyfunc, st = flavors["python_function"], flavors["sentence_transformers"]
    if not isinstance(pyfunc, dict) or not isinstance(st, dict):
        raise ModelError(f"{where}: each flavor must be a mapping")
    extra = sorted(set(pyfunc) - PYFUNC_KEYS)
    if extra:
        raise ModelError(
            f"{where}: python_function has {', '.join(extra)}, which would make MLflow run the "
            "model's own code; embedops serves plain sentence-transformers models only"
        )
    if pyfunc.get("loader_module") != LOADER_MODULE:
        raise ModelError(
            f"{where}: python_function.loader_module is '{pyfunc.get('loader_module')}', expected {LOADER_MODULE}"
        )
    if pyfunc.get("data") != FLAVOR_FOLDER:
        raise ModelError(f"{where}: python_function.data is '{pyfunc.get('data')}', expected {FLAVOR_FOLDER}")
    if st.get("code"):
        raise ModelError(f"{where}: sentence_transformers.code names code paths ({st['code']}); refused")
    pickles = pickle_files(root)
    if pickles:
        raise ModelError(
            f"{root} holds pickle files ({', '.join(pickles[:3])}); embedops loads safetensors only and never unpickles"
        )
    code = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    if code:
        raise ModelError(f"{root} carries Python files ({', '.join(code[:3])}): {STRIP_HINT}")
    if not (root / FLAVOR_FOLDER).is_dir():
        raise ModelError(f"{root} has no {FLAVOR_FOLDER}/ folder")
    return root / FLAVOR_FOLDER


def check_model_folder(folder: Path) -> Path:
    """Return the folder that holds the model's weights, or raise a ModelError saying why not."""
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder}")
    if (folder / MLMODEL).is_file():
        folder = check_logged_model(folder)
    elif (folder / FLAVOR_FOLDER).is_dir():
        folder = folder / FLAVOR_FOLDER
    pickles = pickle_files(folder)
    if pickles:
        raise ModelError(
            f"{folder} holds pickle weights ({', '.join(pickles[:3])}); embedops loads "
            "safetensors only: convert with save_pretrained(safe_serialization=True)"
        )
    if not any(folder.rglob("*.safetensors")):
        raise ModelError(
            f"{folder} has no *.safetensors weights: is it a sentence-transformers or Hugging Face model folder?"
        )
    if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
        raise ModelError(f"{folder} has neither config.json nor modules.json")
    code = custom_code(folder)
    if code:
        raise ModelError(f"{folder} asks for code of its own ({'; '.join(code[:3])}): {STRIP_HINT}")
    return folder


def check_safetensors(folder: Path, label: str | None = None) -> None:
    """Read every tensor (numpy, no torch): a truncated or overwritten weights file fails here, by name."""
    from safetensors import SafetensorError, safe_open

    for weights in sorted(folder.rglob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="numpy") as fh:
                for key in fh.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    fh.get_tensor(key)
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{label or folder}: {weights.relative_to(folder)} is corrupt ({exc})") from None


def download_model(ref: str, download_dir: Path | None = None) -> Path:
    """The MLflow model ``ref`` as a local folder (its top, where ``MLmodel`` is)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=str(download_dir) if download_dir else None)
        )
    except MlflowException as exc:
        raise ModelError(f"cannot resolve model URI '{ref}': {exc.message}") from None


def resolve_model_folder(ref: str | Path, download_dir: Path | None = None) -> Path:
    """A local folder for ``ref``: itself, or the MLflow model downloaded under ``download_dir``."""
    ref_str = str(ref)
    if is_mlflow_uri(ref_str):
        return check_model_folder(download_model(ref_str, download_dir))
    return check_model_folder(Path(ref_str).expanduser())


def load_sentence_transformer(
    ref: str | Path, *, device: str | None = None, max_seq_length: int | None = None, download_dir: Path | None = None
) -> SentenceTransformer:
    from safetensors import SafetensorError
    from sentence_transformers import SentenceTransformer

    folder = resolve_model_folder(ref, download_dir)
    try:
        model = SentenceTransformer(str(folder), device=device, trust_remote_code=False, local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise ModelError(f"cannot load the model in {folder}: {exc}") from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model
