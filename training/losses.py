"""The losses a run can use, built from sentence-transformers (never re-implemented here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.config import TrainConfig

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer


def build_loss(
    model: SentenceTransformer, cfg: TrainConfig, guide: SentenceTransformer | None = None
) -> torch.nn.Module:
    """The configured loss; the job checked beforehand that the data has the columns it needs.
    ``guide`` is gist's frozen guide model (required for it, unused otherwise)."""
    from sentence_transformers.sentence_transformer import losses

    if cfg.loss == "contrastive":
        # In-batch negatives: every other positive in the batch (and any negative column) is a negative.
        return losses.MultipleNegativesRankingLoss(model, scale=cfg.scale)
    if cfg.loss == "gist":
        # In-batch negatives, minus those the guide scores above the positive: on small judged sets
        # many in-batch "negatives" are relevant documents nobody labelled.
        if guide is None:
            raise ValueError("the gist loss needs its guide model")
        return losses.GISTEmbedLoss(model, guide, temperature=1.0 / cfg.scale)
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
    return cfg.loss in ("contrastive", "cached_contrastive", "gist")
