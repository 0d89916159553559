"""Training config parsing and name validation: defaults, overrides and every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedops.core.errors import ConfigError, InvalidNameError
from embedops.core.names import validate_name
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


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("data: x.jsonl\nlearning_rate: -0.001\n", "learning_rate: Input should be greater than 0"),
        ("data: x.jsonl\nepochs: 0\n", "epochs: Input should be greater than 0"),
        ("data: x.jsonl\nepochz: 2\n", "epochz: unknown setting"),
        ("data: x.jsonl\nloss: hinge\n", "loss: Input should be 'contrastive'"),
        ("epochs: 1\n", "data: Field required"),
        ("- data\n- x\n", "expected a mapping"),
        ("data: [unclosed\n", "not valid YAML"),
        ("data: x.jsonl\nmodel_name: ../escape\n", "model name '../escape' may use only"),
        ("data: x.jsonl\nmodel_name: a/b\n", "model name 'a/b' may use only"),
        ('data: x.jsonl\nmodel_name: "a\\0b"\n', "model name 'a\\\\x00b' may use only"),
    ],
)
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


@pytest.mark.parametrize(
    "name",
    ["", "../x", "a/b", "a\\b", "a\0b", "a..b", ".hidden", "-x", "tab\tname", "new\nline", "x" * 65, "spa ce", "ünï"],
)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_outside_32_bits_is_refused_at_config_load(seed: int) -> None:
    # numpy and the trainer reject it too, but only once the model has loaded.
    with pytest.raises(ConfigError, match="seed: Input should be"):
        load_config(None, data="x.jsonl", seed=seed)
    assert load_config(None, data="x.jsonl", seed=0).seed == 0
    assert load_config(None, data="x.jsonl", seed=2**32 - 1).seed == 2**32 - 1


def test_epochs_are_bounded_unless_max_steps_decides() -> None:
    # `--epochs 1e9` once started a run of 25 billion steps.
    with pytest.raises(ConfigError, match=r"epochs \(--epochs\) is 1e\+09, more than 100: pass --max-steps"):
        load_config(None, data="x.jsonl", epochs=1e9)
    assert load_config(None, data="x.jsonl", epochs=100).epochs == 100
    assert load_config(None, data="x.jsonl", epochs=1e9, max_steps=10).max_steps == 10


def test_a_lone_surrogate_in_a_config_file_names_the_file_and_setting(tmp_path: Path) -> None:
    # YAML's "\ud800" escape: resolving the path raised a UnicodeEncodeError.
    path = write(tmp_path / "t.yaml", 'data: "pairs\\ud800.jsonl"\n')
    with pytest.raises(ConfigError, match=r"t\.yaml: data: invalid Unicode: lone surrogate U\+D800 at character 6"):
        load_config(path)


def test_an_unwritable_home_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from embedops.core.settings import configure

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # else the home is not where the store goes
    blocker = tmp_path / "somefile"
    blocker.write_text("not a folder")
    # A home under a regular file fails for every user, root included (NotADirectoryError).
    monkeypatch.setenv("EMBEDOPS_HOME", str(blocker / "home"))
    with pytest.raises(
        ConfigError,
        match=rf"EMBEDOPS_HOME {blocker / 'home'} is not a writable folder "
        r"\(Not a directory\): point EMBEDOPS_HOME at a folder you can write to",
    ):
        configure()
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    monkeypatch.setenv("EMBEDOPS_HOME", str(readonly))
    if os.geteuid() == 0:  # mode bits do not stop root: refuse the write as the kernel does for anyone else
        import tempfile

        def refuse(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied", str(readonly))

        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    try:
        with pytest.raises(
            ConfigError,
            match=rf"EMBEDOPS_HOME {readonly} is not a writable folder \(Permission "
            "denied\\): point EMBEDOPS_HOME at a folder you can write to",
        ):
            configure()
    finally:
        readonly.chmod(0o700)  # so pytest can clean up
