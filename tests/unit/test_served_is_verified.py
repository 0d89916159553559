"""What serving runs is what was verified: four attacks planted in a real store are refused at
register, promote (with and without the gate), rollback, evaluate and serve, and nothing moves."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from embedops.cli import app
from embedops.core.errors import ModelError
from evaluation.models import FLAVOR_FOLDER, check_model_folder, strip_remote_code
from registry.ledger import Ledger
from registry.store import RegistryError, alias_version, list_versions
from tests.conftest import HELPCENTER

runner = CliRunner()
LENIENT = "min_delta: 0.0\nalpha: null\nguards: {}\nmax_latency_increase: null\nn_resamples: 200\n"


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr


def python_model_pickle(root: Path) -> None:
    """MLflow's python_model flavor: `mlflow models serve` would unpickle this and call it."""
    (root / "python_model.pkl").write_bytes(pickle.dumps({"payload": "os.system"}))
    spec = yaml.safe_load((root / "MLmodel").read_text())
    spec["flavors"]["python_function"] |= {
        "loader_module": "mlflow.pyfunc.model",
        "python_model": "python_model.pkl",
        "cloudpickle_version": "3.0.0",
    }
    (root / "MLmodel").write_text(yaml.safe_dump(spec))


def data_path(root: Path) -> None:
    """MLmodel's data: points MLflow's loader at another folder than the one embedops checked."""
    shutil.copytree(root / FLAVOR_FOLDER, root / "elsewhere")
    spec = yaml.safe_load((root / "MLmodel").read_text())
    spec["flavors"]["python_function"]["data"] = "elsewhere"
    (root / "MLmodel").write_text(yaml.safe_dump(spec))


def auto_map(root: Path) -> None:
    """config.json asks transformers to fetch and run a hub repository's modelling code."""
    config_file = root / FLAVOR_FOLDER / "config.json"
    config = json.loads(config_file.read_text())
    config["auto_map"] = {"AutoModel": "someone/evil-bert--modeling.EvilModel"}
    config_file.write_text(json.dumps(config))


def pickle_beside_weights(root: Path) -> None:
    """A pickle with an innocent name next to the safetensors weights (found by its first bytes)."""
    (root / FLAVOR_FOLDER / "extra_state.dat").write_bytes(pickle.dumps([1, 2, 3], protocol=4))


ATTACKS: dict[str, tuple[Callable[[Path], None], str]] = {
    "python_model_pickle": (python_model_pickle, "python_function has cloudpickle_version, python_model"),
    "data_path": (data_path, "python_function.data is 'elsewhere'"),
    "auto_map": (auto_map, "auto_map in config.json"),
    "pickle_beside_weights": (pickle_beside_weights, "extra_state.dat"),
}


def stored_root(name: str, version: str) -> Path:
    """Where the embedded artifact store keeps this version's logged model (MLmodel at its top)."""
    client = MlflowClient()
    model_id = client.get_model_version(name, version).source.removeprefix("models:/")
    return Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))


@pytest.fixture
def logged_root(store, tiny_model: Path, unique_name: str, tmp_path: Path) -> Path:
    """A clean logged model as MLflow stores it, copied out of the store to be tampered with."""
    assert cli("register", str(tiny_model), "--name", unique_name)[0] == 0
    return Path(shutil.copytree(stored_root(unique_name, "1"), tmp_path / "logged"))


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_attack_is_refused_by_the_shape_check_alone(logged_root: Path, attack: str) -> None:
    """No manifest involved: the folder itself says what would run."""
    plant, names = ATTACKS[attack]
    check_model_folder(logged_root)  # clean
    plant(logged_root)
    with pytest.raises(ModelError, match=names.replace(".", r"\.")):
        check_model_folder(logged_root)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_register_refuses_each_attack_and_creates_no_version(logged_root: Path, unique_name: str, attack: str) -> None:
    plant, names = ATTACKS[attack]
    plant(logged_root)
    code, err = cli("register", str(logged_root), "--name", unique_name)
    assert code == 1 and names in err, err
    assert "unexpected" not in err and len(err.strip().splitlines()[-1]) < 600
    assert [v.version for v in list_versions(unique_name)] == ["1"]


def test_strip_remote_code_registers_without_it_and_says_so(
    store, tiny_model: Path, unique_name: str, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(tiny_model, tmp_path / "hub-style"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"auto_map": {"AutoModel": "x/y--m.M"}}))
    (folder / "modeling_evil.py").write_text("import os\n")
    code, err = cli("register", str(folder), "--name", unique_name)
    assert code == 1 and "auto_map in config.json" in err and "--strip-remote-code" in err
    code, err = cli("register", str(folder), "--name", unique_name, "--strip-remote-code")
    assert code == 0, err
    tags = MlflowClient().get_model_version(unique_name, "1").tags
    assert tags["remote_code_stripped"] == "modeling_evil.py; auto_map in config.json"
    logged = json.loads((stored_root(unique_name, "1") / FLAVOR_FOLDER / "config.json").read_text())
    assert "auto_map" not in logged
    # The original folder is untouched: stripping works on a copy.
    assert "auto_map" in json.loads((folder / "config.json").read_text())
    _, dropped = strip_remote_code(folder, tmp_path / "again")
    assert dropped == ["modeling_evil.py", "auto_map in config.json"]


def moves(store, name: str) -> list[tuple[str, str | None, str | None, str]]:
    ledger = Ledger(f"sqlite:///{store.home / 'ledger.db'}")
    return [(m.action, m.from_version, m.to_version, m.outcome) for m in ledger.history(name)]


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_version_tampered_in_the_store_is_refused_everywhere(
    store, tiny_model: Path, unique_name: str, tmp_path: Path, attack: str
) -> None:
    """v1 and v2 registered clean, v2 in production, v1 previous; then v1's stored files are attacked."""
    name = unique_name
    for _ in range(2):
        assert cli("register", str(tiny_model), "--name", name)[0] == 0
    assert cli("promote", name, "--version", "1", "--initial")[0] == 0
    assert cli("promote", name, "--version", "2", "--skip-gate", "--reason", "setup")[0] == 0
    plant, _ = ATTACKS[attack]
    plant(stored_root(name, "1"))
    before = moves(store, name)
    policy = tmp_path / "lenient.yaml"
    policy.write_text(LENIENT)

    attempts = {
        "rollback": ["rollback", name, "--reason", "bad answers"],
        "promote --skip-gate": ["promote", name, "--version", "1", "--skip-gate", "--reason", "x"],
        "promote through the gate": [
            "promote",
            name,
            "--version",
            "01",
            "--golden",
            str(HELPCENTER),
            "--policy",
            str(policy),
        ],
    }
    for what, argv in attempts.items():
        code, err = cli(*argv)
        assert code == 1 and f"models:/{name}/1" in err, (what, err)
        assert "unexpected" not in err, (what, err)
    assert (alias_version(name, "production"), alias_version(name, "previous")) == ("2", "1")
    after = moves(store, name)
    assert after[: len(before)] == before
    assert after[len(before) :] == [
        ("rollback", "2", "1", "failed"),
        ("promote", "2", "1", "failed"),
        ("promote", "2", "1", "failed"),
    ]

    scoring = ["--golden", str(HELPCENTER), "--latency-calls", "0"]
    for argv in (
        ["evaluate", "--model", f"models:/{name}/1", *scoring],
        ["evaluate", "--model", f"models:/{name}@previous", *scoring],
        ["serve", name, "--alias", "previous"],
    ):
        code, err = cli(*argv)
        assert code == 1 and f"models:/{name}/1" in err and "unexpected" not in err, (argv, err)
    assert not (store.home / "serving" / name / "v1" / "model").exists()  # nothing was left to serve
    assert moves(store, name) == after  # reading moves nothing


def test_register_names_a_truncated_weights_file(store, tiny_model: Path, unique_name: str, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_model, tmp_path / "cut"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # an interrupted copy
    code, err = cli("register", str(folder), "--name", unique_name)
    assert code == 1 and "model.safetensors is corrupt" in err and "unexpected" not in err, err
    with pytest.raises(RegistryError, match="no registered model"):
        list_versions(unique_name)
