"""Fixtures of the router tier: two real model versions served by real `nepse-predictor serve`
processes, one per track, for Debian's nginx running the chart's rendered router config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from routerkit import Router, missing_tools

from testkit.service import ServiceProcess

TRACK_MODELS = {"stable": "v1", "blue": "v1", "canary": "v2", "green": "v2", "shadow": "v2"}


@pytest.fixture(scope="session")
def router_tools() -> None:
    problems = missing_tools()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def backends(
    router_tools, trained_model: Path, second_model: Path, tmp_path_factory
) -> Iterator[dict[str, ServiceProcess]]:
    """One serving process per track: stable/blue serve model v1, canary/green/shadow v2."""
    models = {"v1": trained_model, "v2": second_model}
    logs = tmp_path_factory.mktemp("backend-logs")
    started: dict[str, ServiceProcess] = {}
    try:
        for track, version in TRACK_MODELS.items():
            backend = ServiceProcess(track, models[version], track, logs, log_requests=True)
            started[track] = backend
        for backend in started.values():
            backend.wait()
        yield started
    finally:
        for backend in started.values():
            backend.stop()


@pytest.fixture
def router(backends: dict[str, ServiceProcess], tmp_path: Path) -> Iterator[Router]:
    r = Router(tmp_path / "router", {t: b.address for t, b in backends.items()})
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def predict_body(trained_model: Path) -> bytes:
    """A valid /v1/predict request: one row with every feature the model was trained on."""
    features = json.loads((trained_model / "metadata.json").read_text())["features"]
    return json.dumps({"features": {name: 0.01 for name in features}}).encode()
