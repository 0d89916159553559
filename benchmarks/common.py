"""Helpers shared by the benchmarks: where the shared data lives, the machine, RESULTS.md rows."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("EMBEDOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def require_dataset(name: str) -> Path:
    """The shared dataset folder, or a clean exit (status 0) saying it is absent."""
    path = SHARED_DATA / name
    if not (path / "corpus.jsonl").is_file():
        print(f"skipped: {path} not found (set EMBEDOPS_SHARED_DATA to the shared data folder)")
        sys.exit(0)
    return path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def today() -> str:
    return dt.date.today().isoformat()


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
