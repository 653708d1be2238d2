"""Fixtures of the chart tier: every test runs the real pinned tools from .tools/bin; the
property test also gets a local control plane (testkit.cluster) for server-side dry runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from chartkit import HELMS, MissingTool, tool

from testkit.cluster import Cluster, control_plane


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


@pytest.fixture(scope="session")
def api_server(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A real kube-apiserver (the e2e tier's local control plane) with the CRDs installed."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def report(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"chart: {line}")

    yield from control_plane(report)


@pytest.fixture(scope="session")
def dry_run_namespace(api_server: Cluster) -> Iterator[str]:
    """A namespace that server-side dry runs can name (dry runs create nothing in it)."""
    name = f"property-{uuid.uuid4().hex[:6]}"
    api_server.kubectl("create", "namespace", name)
    yield name
    api_server.kubectl("delete", "namespace", name, "--wait=false", check=False)
