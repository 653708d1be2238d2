"""Fixtures of the chart tier: every test runs the real pinned tools from .tools/bin."""

from __future__ import annotations

import pytest
from chartkit import HELMS, MissingTool, tool


@pytest.fixture(params=HELMS)
def helm(request: pytest.FixtureRequest) -> str:
    """Each test that takes `helm` runs once with Helm 3 and once with Helm 4."""
    try:
        tool(request.param)
    except MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)
    return request.param


def require(name: str):
    try:
        return tool(name)
    except MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)
