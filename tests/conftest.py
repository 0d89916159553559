"""Shared fixtures: a tiny random model, a real MLflow store in a temporary home, small data."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedops.settings import apply_offline_env

apply_offline_env()

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HELPCENTER = EXAMPLES / "helpcenter"
SHARED_DATA = REPO.parent / "shared" / "data"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 32-dim BERT whose vocabulary covers the help-center words."""
    from tests.tiny_model import build_tiny_model

    texts = [d["title"] + " " + d["text"] for d in read_jsonl(HELPCENTER / "corpus.jsonl")]
    texts += [q["text"] for q in read_jsonl(HELPCENTER / "queries.jsonl")]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), texts)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One embedded MLflow store (sqlite + local artifacts) for the session; tests use their own names."""
    home = tmp_path_factory.mktemp("embedops-home")
    saved = {k: os.environ.get(k) for k in ("EMBEDOPS_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["EMBEDOPS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from embedops.settings import configure

    yield configure()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    """40 help-center training pairs: enough for a few tiny-model steps."""
    return write_jsonl(tmp_path / "pairs.jsonl", read_jsonl(HELPCENTER / "train_pairs.jsonl")[:40])


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name of this test's own, so tests sharing a store never collide."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60].strip("-")
