"""The losses a run can use, built from sentence-transformers (never re-implemented here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.config import TrainConfig

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer


def build_loss(model: SentenceTransformer, cfg: TrainConfig) -> torch.nn.Module:
    """The configured loss; the job checked beforehand that the data has the columns it needs."""
    from sentence_transformers.sentence_transformer import losses

    if cfg.loss == "contrastive":
        # In-batch negatives: every other positive in the batch (and any negative column) is a negative.
        return losses.MultipleNegativesRankingLoss(model, scale=cfg.scale)
    if cfg.loss == "cached_contrastive":
        # Same objective, gradient caching: effective batch size far above what memory holds at once.
        return losses.CachedMultipleNegativesRankingLoss(model, scale=cfg.scale, mini_batch_size=cfg.mini_batch_size)
    # TripletLoss defaults to Euclidean distance with margin 5; unit vectors are at most 2 apart,
    # so that margin is never met and nothing trains. Cosine distance with a small margin does.
    metric = {"cosine": losses.TripletDistanceMetric.COSINE, "euclidean": losses.TripletDistanceMetric.EUCLIDEAN}[
        cfg.distance
    ]
    return losses.TripletLoss(model, distance_metric=metric, triplet_margin=cfg.margin)


def uses_in_batch_negatives(cfg: TrainConfig) -> bool:
    """Such losses need batches without repeated texts: a repeat is a false negative."""
    return cfg.loss in ("contrastive", "cached_contrastive")
