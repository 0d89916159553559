"""MLflow edge of evaluation: one run per evaluation, with its per-query table."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

from embedops.core.progress import say
from embedops.core.runs import ensure_experiment

if TYPE_CHECKING:
    import pandas as pd

    from evaluation.evaluator import EvaluationResult
    from evaluation.job import EvaluationReport


def per_query_table(result: EvaluationResult) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_dict(result.per_query, orient="index")
    frame.index.name = "query_id"
    return frame.reset_index()


def log_evaluation(
    report: EvaluationReport, result: EvaluationResult, *, experiment: str, artifact_root: str | None
) -> str:
    """One MLflow run per evaluation: metrics, CIs, latency, the per-query table, the digest."""
    import mlflow

    say("logging the evaluation run to MLflow")
    experiment_id = ensure_experiment(experiment, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(
            {
                "model": report.model,
                "golden": report.golden_path,
                "split": report.split,
                "precision": report.precision,
                "n_queries": report.n_queries,
                "n_documents": report.n_documents,
            }
        )
        mlflow.set_tags(
            {"golden_digest": report.golden_digest, "model_digest": report.model_digest, "embedops.job": "evaluate"}
        )
        metrics = dict(report.metrics)
        for name, (low, high) in report.ci.items():
            metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = low, high
        metrics |= report.latency or {}
        metrics["eval_seconds"] = report.seconds
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "per_query.parquet"
            per_query_table(result).to_parquet(table, index=False)
            mlflow.log_artifact(str(table), artifact_path="evaluation")
            summary = Path(tmp) / "summary.json"
            summary.write_text(json.dumps(report.to_dict(), indent=2))
            mlflow.log_artifact(str(summary), artifact_path="evaluation")
        return cast(str, run.info.run_id)  # RunInfo.run_id is unannotated in MLflow
