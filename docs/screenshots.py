"""Screenshots of the HTML reports in docs/img, taken with headless Chromium from a finished demo.

    embedops demo && python docs/screenshots.py demo-home

Reads the demo's registry and MLflow runs (never the printed output): the gate report of the
fine-tune that passed (v2), of the shuffled-pairs candidate that was rejected (v3), and the
Evidently drift report of the payroll launch week.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow import MlflowClient

OUT = Path(__file__).resolve().parent / "img"
MODEL = "helpcenter-embedder"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        sys.exit("no Chromium found: install it (apt-get install chromium) and run again")
    return found


def shoot(page: Path, target: Path, *, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        # The Evidently report draws its plots with JavaScript: give it virtual time to finish.
        subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                f"--window-size=1200,{height}",
                "--virtual-time-budget=15000",
                f"--screenshot={target}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    print(f"{target.relative_to(OUT.parent.parent)}  <- {page}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("home", type=Path, help="the demo's home (embedops demo --home, default demo-home)")
    home = parser.parse_args().home.resolve()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def artifact(run_id: str, path: str) -> Path:
        return Path(client.download_artifacts(run_id, path, dst_path=tempfile.mkdtemp()))

    OUT.mkdir(exist_ok=True)
    for version, name in (("2", "gate-pass.png"), ("3", "gate-reject.png")):
        run_id = client.get_model_version(MODEL, version).tags["gate_decision_run_id"]
        shoot(artifact(run_id, "gate/report.html"), OUT / name, height=2000)
    monitoring = client.get_experiment_by_name("monitoring")
    drifted = client.search_runs(
        [monitoring.experiment_id], "metrics.drifted = 1", order_by=["attributes.start_time ASC"]
    )[0]  # the one that retrained
    shoot(artifact(drifted.info.run_id, "drift/drift_report.html"), OUT / "drift-report.png", height=800)


if __name__ == "__main__":
    main()
