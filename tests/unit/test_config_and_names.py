"""Training config parsing and name validation: defaults, overrides and every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.errors import ConfigError, InvalidNameError
from registry.names import validate_name
from training.config import load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_flags_alone_give_defaults() -> None:
    cfg = load_config(None, data="pairs.jsonl")
    assert (cfg.loss, cfg.distance, cfg.batch_size, cfg.epochs) == ("contrastive", "cosine", 32, 1.0)
    assert cfg.base_model is None and cfg.register_version


def test_flags_override_yaml_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf" / "t.yaml", "data: ../d/pairs.jsonl\nepochs: 3\nbatch_size: 8\n")
    cfg = load_config(path, batch_size=4, learning_rate=None)
    assert cfg.data == str(tmp_path / "d" / "pairs.jsonl")
    assert (cfg.epochs, cfg.batch_size) == (3, 4)


def test_config_is_frozen() -> None:
    cfg = load_config(None, data="x.jsonl")
    with pytest.raises(Exception, match="frozen"):
        cfg.epochs = 2  # type: ignore[misc]


@pytest.mark.parametrize("yaml_text, message", [
    ("data: x.jsonl\nlearning_rate: -0.001\n", "learning_rate: Input should be greater than 0"),
    ("data: x.jsonl\nepochs: 0\n", "epochs: Input should be greater than 0"),
    ("data: x.jsonl\nepochz: 2\n", "epochz: unknown setting"),
    ("data: x.jsonl\nloss: hinge\n", "loss: Input should be 'contrastive'"),
    ("epochs: 1\n", "data: Field required"),
    ("- data\n- x\n", "expected a mapping"),
    ("data: [unclosed\n", "not valid YAML"),
    ("data: x.jsonl\nmodel_name: ../escape\n", "model name '../escape' may use only"),
    ("data: x.jsonl\nmodel_name: a/b\n", "model name 'a/b' may use only"),
    ("data: x.jsonl\nmodel_name: \"a\\0b\"\n", "model name 'a\\\\x00b' may use only"),
])
def test_bad_configs_are_config_errors(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "t.yaml", yaml_text))


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "t.yaml", "data: x\nepochs: 0\nbatch_size: 1\nfoo: 1\n"))
    assert all(word in str(info.value) for word in ("epochs", "batch_size", "foo"))


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", ["helpcenter-embedder", "m.v2", "A_1", "x" * 64])
def test_good_names_pass(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a\\b", "a\0b", "a..b", ".hidden", "-x", "tab\tname",
                                  "new\nline", "x" * 65, "spa ce", "ünï"])
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name)

