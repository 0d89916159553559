"""`embedops train` under `torchrun --nproc-per-node 2` (CPU, gloo): data-parallel, one run, one version."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import HELPCENTER, run_python, train_argv

pytestmark = [pytest.mark.slow]


def test_two_ranks_train_and_only_rank_zero_logs_and_registers(tmp_path: Path, tiny_model: Path) -> None:
    home = tmp_path / "home"  # a fresh home: both ranks start on a store that does not exist yet
    env = os.environ | {
        "EMBEDOPS_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    torchrun = ("-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "embedops")
    train = train_argv(
        HELPCENTER / "train_pairs.jsonl", tiny_model, "ddp-model", "--max-steps", "4", "--batch-size", "8"
    )
    out = run_python(*torchrun, *train, "--golden", str(HELPCENTER), "--json", env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = out.stdout.strip().splitlines()  # rank 1 trains but reports nothing
    result = json.loads(line)
    assert result["version"] == "1" and result["train"]["train_steps"] == 4

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "embedops-training"]
    (run,) = client.search_runs([experiment.experiment_id])
    # The trainer itself saw two processes: batch_size is per process, 16 pairs per step in all.
    assert run.info.status == "FINISHED" and run.data.metrics["train_world_size"] == 2
    assert run.data.params["batch_size"] == "8" and "ndcg_at_10" in run.data.metrics
    assert [str(v.version) for v in client.search_model_versions("name='ddp-model'")] == ["1"]
