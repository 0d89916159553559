"""How long a command stays silent: seconds to its first stderr line and the longest gap between lines.

    python benchmarks/silent_gaps.py embedops drift helpcenter-embedder --current ... --json

Run against a demo store (`make demo`, then the line it prints). The phase lines are what fill the
gaps; a gap inside an announced phase is still counted.
"""

from __future__ import annotations

import subprocess
import sys
import time


def main() -> None:
    start = time.perf_counter()
    process = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert process.stderr is not None and process.stdout is not None
    arrivals = [time.perf_counter() - start for _ in process.stderr]
    stdout = process.stdout.read()
    process.wait()
    end = time.perf_counter() - start
    marks = [*arrivals, end]
    gaps = [b - a for a, b in zip([0.0, *marks[:-1]], marks, strict=True)]
    first = arrivals[0] if arrivals else end
    print(
        f"exit {process.returncode}  total {end:.1f} s  first line {first:.1f} s  longest silence {max(gaps):.1f} s  "
        f"stderr lines {len(arrivals)}  stdout lines {len(stdout.splitlines())}"
    )


if __name__ == "__main__":
    main()
