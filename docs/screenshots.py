"""Screenshots of the HTML reports in docs/img, taken with headless Chromium from a finished demo.

    embedops demo && python docs/screenshots.py demo-home

Reads the demo's registry and MLflow runs (never the printed output): the gate report of the
fine-tune that passed (v2), of the shuffled-pairs candidate that was rejected (v3), and the drift
report of the payroll launch week with Evidently's page behind it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from mlflow import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from tests.browser import render

OUT = Path(__file__).resolve().parent / "img"
MODEL = "helpcenter-embedder"


def shoot(page: Path, target: Path, *, height: int, wait_ms: int = 0) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        sys.exit("no Chromium found: install it (apt-get install chromium) and run again")
    render(browser, page, target, width=1200, height=height, wait_ms=wait_ms)
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
    pages = artifact(drifted.info.run_id, "drift")
    shoot(pages / "drift_report.html", OUT / "drift-report.png", height=1300)
    # Evidently draws its plots with JavaScript: give it virtual time to finish.
    shoot(pages / "evidently.html", OUT / "drift-evidently.png", height=800, wait_ms=15000)


if __name__ == "__main__":
    main()
