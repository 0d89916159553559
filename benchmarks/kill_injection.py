"""SIGKILL fault injection, many rounds: `python benchmarks/kill_injection.py [--rounds 30] [--seed 1]`.

Each round kills one real embedops job (train+register, register, promote, rollback) at a random
point of its usual duration and checks the registry and ledger before and after `doctor --fix`
(see tests/kill_injection.py for the invariants). Prints one line per round and a summary; exits 1
on any violation.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
from pathlib import Path

from common import REPO, machine, today


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from embedops.core.settings import apply_offline_env

    apply_offline_env()
    from tests.conftest import HELPCENTER, read_jsonl, write_jsonl
    from tests.kill_injection import one_round, prepare
    from tests.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EMBEDOPS_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        from embedops.core.settings import configure

        settings = configure()
        texts = [d["title"] + " " + d["text"] for d in read_jsonl(HELPCENTER / "corpus.jsonl")]
        texts += [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
        tiny = build_tiny_model(Path(tmp) / "tiny", texts)
        pairs = write_jsonl(Path(tmp) / "pairs.jsonl", read_jsonl(HELPCENTER / "train_pairs.jsonl")[:40])
        env = dict(os.environ)
        durations = prepare("killtest", env, tiny, pairs, measure=True)
        print("unkilled durations: " + ", ".join(f"{job} {s:.1f} s" for job, s in durations.items()), flush=True)
        rng = random.Random(args.seed)
        rounds = []
        for i in range(args.rounds):
            r = one_round(
                rng,
                name="killtest",
                env=env,
                ledger_url=settings.ledger_url,
                tiny_model=tiny,
                pairs=pairs,
                durations=durations,
            )
            rounds.append(r)
            state = (
                (f"killed at {r.delay_s:.2f} s" if r.delay_s else "killed at its pending row")
                if r.killed
                else (f"finished (exit {r.exit_code})")
            )
            print(
                f"round {i + 1:3d}  {r.job:18s} {state:26s} violations {len(r.violations)}  "
                f"fixed: {', '.join(r.fixed) or '-':32s} doctor after fix {len(r.doctor_findings)}",
                flush=True,
            )
            for line in r.violations + r.doctor_findings:
                print(f"           {line}")
    bad = [r for r in rounds if r.violations or r.doctor_findings]
    by_job = collections.Counter((r.job, r.killed) for r in rounds)
    print(f"machine: {machine()}  date: {today()}")
    print(f"command: python benchmarks/kill_injection.py --rounds {args.rounds} --seed {args.seed}")
    print(
        json.dumps(
            {
                "rounds": len(rounds),
                "killed": sum(r.killed for r in rounds),
                "by_job": {f"{job} {'killed' if k else 'finished'}": n for (job, k), n in sorted(by_job.items())},
                "doctor_fixed": dict(collections.Counter(kind for r in rounds for kind in r.fixed)),
                "rounds_with_violations": len(bad),
            }
        )
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
