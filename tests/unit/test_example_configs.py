"""The configs shipped in examples/ are valid: a newcomer's first copy must not fail to parse."""

from __future__ import annotations

from embedops.pipelines import load_retrain_config
from monitoring.config import load_drift_config
from registry.gate.policy import load_policy
from tests.conftest import EXAMPLES, HELPCENTER
from training.config import load_config


def test_example_configs_validate_and_point_at_the_sample_data() -> None:
    for name in ("train.yaml", "train_triplet.yaml"):
        cfg = load_config(EXAMPLES / "configs" / name)
        assert cfg.golden == str(HELPCENTER.resolve()) and cfg.model_name == "helpcenter-embedder"
    assert load_policy(EXAMPLES / "configs" / "policy.yaml").golden == str(HELPCENTER.resolve())
    assert load_drift_config(EXAMPLES / "configs" / "drift.yaml").trigger.min_window == 1000
    retrain = load_retrain_config(EXAMPLES / "configs" / "retrain.yaml")
    assert retrain.train["data"] == str((HELPCENTER / "train_pairs.jsonl").resolve())
    assert not retrain.auto_promote


def test_the_scifact_recipe_reads_the_shared_data_and_mines_behind_the_margin() -> None:
    cfg = load_config(EXAMPLES / "configs" / "train_scifact.yaml")
    shared = (EXAMPLES.parent.parent / "shared" / "data" / "scifact").resolve()
    assert cfg.data == cfg.golden == str(shared) and (cfg.data_split, cfg.golden_split) == ("train", "test")
    assert cfg.hard_negatives and cfg.negatives_margin > 0 and cfg.epochs > 1
