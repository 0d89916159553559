"""The full Evidently Report (HTML, with its slow t-SNE): built when drift is flagged or on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monitoring.detect import embedding_frame


def write_evidently_report(reference: np.ndarray, current: np.ndarray, path: Path, *, threshold: float) -> Path:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics.embeddings import EmbeddingsDrift, ModelDriftMethod

    columns = [f"e{i}" for i in range(reference.shape[1])]
    definition = DataDefinition(numerical_columns=columns, embeddings={"query_embeddings": columns})
    report = Report(
        [EmbeddingsDrift(embeddings_name="query_embeddings", drift_method=ModelDriftMethod(threshold=threshold))]
    )
    snapshot = report.run(
        Dataset.from_pandas(embedding_frame(current), data_definition=definition),
        Dataset.from_pandas(embedding_frame(reference), data_definition=definition),
    )
    snapshot.save_html(str(path))
    return path
