"""Every bad tuning setup is a ConfigError naming what to fix, before any training starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedops.cli import app
from embedops.core.errors import ConfigError
from tests.conftest import EXAMPLES, HELPCENTER
from training.tune_config import load_tune_config

TRAIN = {"data": str(HELPCENTER / "tune_pairs.jsonl"), "golden": str(HELPCENTER), "golden_split": "dev"}


def tune_yaml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tune.yaml"
    path.write_text(f"train: {{data: {TRAIN['data']}, golden: {TRAIN['golden']}, golden_split: dev}}\n{body}")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("search_space: {learning_rate: {type: float, low: 0.001, high: 0.001}}", "empty or inverted range"),
        ("enqueue: [{dropout: 0.1}]", "enqueue[0] sets ['dropout'], which the search space does not vary"),
        ("search_space: {learning_rate: {type: float, low: 0.01, high: 0.001}}", "empty or inverted range"),
        ("search_space: {learning_rate: {type: float, low: 0.0, high: 0.1, log: true}}", "must start above 0"),
        ("search_space: {learnin_rate: {type: float, low: 0.001, high: 0.01}}", "cannot tune ['learnin_rate']"),
        ("search_space: {data: {type: categorical, choices: [a.jsonl]}}", "cannot tune ['data']"),
        ("search_space: {batch_size: {type: categorical, choices: []}}", "non-empty 'choices'"),
        ("search_space: {epochs: {type: int, low: 1}}", "needs both 'low' and 'high'"),
        ("search_space: {epochs: {type: int, low: 1.5, high: 3}}", "whole-number bounds"),
        ("objective: {metric: ndcg_at_1000}", "evaluation does not produce 'ndcg_at_1000'"),
        ("sampler: {type: grid}", "grid sampler needs every parameter categorical"),
        ("pruner: {type: threshold}", "needs 'lower' or 'upper'"),
        ("trials: 4", "trials"),
        ("max_documents_per_step: 0", "max_documents_per_step"),
    ],
)
def test_bad_tune_configs_are_config_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_tune_config(tune_yaml(tmp_path, body), {})
    assert message in str(err.value)


def test_the_gates_test_split_is_refused_as_the_objective(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="would leak"):
        load_tune_config(None, TRAIN | {"golden_split": "test"})
    with pytest.raises(ConfigError, match="needs an objective"):
        load_tune_config(None, {"data": TRAIN["data"]})


def test_the_example_config_and_the_default_space_load() -> None:
    cfg = load_tune_config(EXAMPLES / "configs" / "tune.yaml", {})
    assert cfg.base().golden_split == "dev" and cfg.study_name() == "helpcenter-embedder-tune"
    default = load_tune_config(None, TRAIN)
    assert set(default.search_space) == {
        "epochs", "hard_negatives", "num_negatives", "negatives_margin", "loss",
        "learning_rate", "batch_size", "scale", "warmup_ratio",
    }  # fmt: skip
    epochs = default.search_space["epochs"]
    assert (epochs.type, epochs.low, epochs.high) == ("int", 1, 4)
    assert default.search_space["loss"].choices == ["contrastive", "gist"]


def test_mining_settings_are_suggested_only_to_trials_that_mine() -> None:
    import optuna

    from training.config import TrainConfig
    from training.tune import suggest

    space = load_tune_config(None, TRAIN).search_space
    base = TrainConfig.model_validate(TRAIN)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = {True: 0, False: 0}
    for _ in range(20):
        trial = study.ask()
        params = suggest(trial, space, base)
        seen[params["hard_negatives"]] += 1
        mining = {"num_negatives", "negatives_margin"} & set(params)
        assert mining == ({"num_negatives", "negatives_margin"} if params["hard_negatives"] else set())
        assert 1 <= params["epochs"] <= 4 and params["loss"] in ("contrastive", "gist")
        TrainConfig.model_validate(base.model_dump() | params)  # every suggestion is a valid training config
        study.tell(trial, 0.5)
    assert seen[True] and seen[False]
    # A base config that mines gets mining settings suggested when the space leaves hard_negatives fixed.
    fixed = {k: v for k, v in space.items() if k != "hard_negatives"}
    params = suggest(study.ask(), fixed, base.model_copy(update={"hard_negatives": True}))
    assert {"num_negatives", "negatives_margin"} <= set(params)


def test_trials_get_only_as_many_negatives_as_fit_the_memory_cap() -> None:
    import optuna

    from training.config import TrainConfig
    from training.tune import suggest

    cfg = load_tune_config(None, TRAIN)
    assert cfg.max_documents_per_step == 128
    base = TrainConfig.model_validate(TRAIN)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    most: dict[int, int] = {}
    for _ in range(60):
        study.enqueue_trial({"hard_negatives": True})
        trial = study.ask()
        params = suggest(trial, cfg.search_space, base, cfg.max_documents_per_step)
        batch, negatives = params["batch_size"], params["num_negatives"]
        assert batch * (1 + negatives) <= 128, params
        most[batch] = max(most.get(batch, 0), negatives)
        study.tell(trial, 0.5)
    # 64 pairs keep one negative; smaller batches still reach the space's top, 3.
    assert most == {16: 3, 32: 3, 64: 1}
    # Without the cap (max_documents_per_step: null) a batch of 64 draws up to 3 again.
    seen = set()
    for _ in range(30):
        study.enqueue_trial({"hard_negatives": True})
        trial = study.ask()
        params = suggest(trial, cfg.search_space, base.model_copy(update={"batch_size": 64}), None)
        seen.add((params["batch_size"], params["num_negatives"]))
        study.tell(trial, 0.5)
    assert (64, 3) in seen


def test_an_unreachable_storage_stops_the_study_before_training(store, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "tune",
            "--data",
            TRAIN["data"],
            "--golden",
            TRAIN["golden"],
            "--golden-split",
            "dev",
            "--storage",
            f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'optuna.db'}",
            "--json",
        ],
    )
    assert result.exit_code == 1 and "cannot open the Optuna storage" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sampler: {seed: -1}", "sampler.seed: Input should be greater than or equal to 0"),
        ("sampler: {seed: 4294967296}", "sampler.seed: Input should be less than 4294967296"),
        (
            "search_space: {epochs: {type: float, low: 1, high: 1000}}",
            "search_space.epochs reaches 1000, more than 100: set train.max_steps (--max-steps) for longer trials",
        ),
        ("search_space: {epochs: {type: categorical, choices: [1, 1000000000]}}", "search_space.epochs reaches 1e+09"),
    ],
)
def test_tune_seeds_and_epochs_are_bounded(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_tune_config(tune_yaml(tmp_path, body), {})
    assert message in str(err.value)
    with_steps = load_tune_config(
        tune_yaml(tmp_path, "search_space: {epochs: {type: float, low: 1, high: 1000}}"), {"max_steps": 50}
    )
    assert with_steps.search_space["epochs"].high == 1000
