"""`embedops serve`: the production version over HTTP through MLflow's scoring server, on both stacks.

The vectors served are the ones the gate scores: both come from ``registry.verified.load_version``."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedops.cli import app
from evaluation.models import load_sentence_transformer
from registry.store import get_version
from registry.verified import load_version
from tests.conftest import free_port, start_embedops, wait_until_answers

pytestmark = [pytest.mark.slow]
TEXTS = ["how do I pause a recurring invoice?", "Payrail transfers are on hold", "export my receipts"]


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_serve_answers_with_the_production_versions_vectors(stack, tiny_model: Path, unique_name: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["register", str(tiny_model), "--name", unique_name]).exit_code == 0
    assert runner.invoke(app, ["promote", unique_name, "--version", "1", "--initial"]).exit_code == 0

    port = free_port()
    server = start_embedops("serve", unique_name, "--port", str(port), "--json", env=stack.env)
    try:
        announced = json.loads(server.stdout.readline())
        assert (announced["version"], announced["alias"]) == ("1", "production")
        wait_until_answers(
            f"http://127.0.0.1:{port}/ping", server, what="the scoring server", log=lambda: server.stderr.read()
        )
        served = np.asarray(post(f"http://127.0.0.1:{port}/invocations", {"inputs": TEXTS})["predictions"])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/model", timeout=30) as response:
            which = json.loads(response.read())
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert (which["model"], which["version"], which["alias"]) == (unique_name, "1", "production")
    gated = load_version(get_version(unique_name, "1")).model.encode(TEXTS)  # the gate's loader
    cosine = (served * gated).sum(axis=1) / (np.linalg.norm(served, axis=1) * np.linalg.norm(gated, axis=1))
    assert served.shape == gated.shape and cosine.min() >= 0.9999, cosine
    local = load_sentence_transformer(tiny_model).encode(TEXTS)
    assert np.allclose(served, local, atol=1e-5)


def test_serving_an_alias_that_is_not_set_fails_at_start(stack, tiny_model: Path, unique_name: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["register", str(tiny_model), "--name", unique_name]).exit_code == 0
    result = runner.invoke(app, ["serve", unique_name, "--alias", "production"])
    assert result.exit_code == 1 and f"{unique_name} has no alias 'production' (set: none)" in result.stderr
