"""Fixtures for end-to-end tests against a real Kubernetes control plane.

The session-scoped ``cluster`` fixture starts etcd, kube-apiserver (admission and RBAC on),
kube-controller-manager, kube-scheduler and kwok fake nodes on loopback with
``scripts/cluster-up.sh`` in a temporary folder, installs the CRDs of Istio, Gateway API,
Knative Serving, the Prometheus Operator, Argo CD and Argo Rollouts (server-side apply, waits
until they are Established), and tears everything down at the end of the session, also when
tests fail or the run is interrupted.

To reuse a running cluster instead (nothing is torn down then), point ``NEPSE_E2E_KUBECONFIG``
at its kubeconfig, or export ``KUBECONFIG=$(scripts/cluster-up.sh)``: a ``KUBECONFIG`` is only
reused when it was written by scripts/cluster-up.sh, so a shell pointed at a real cluster never
receives test objects.

Per test: ``namespace`` (a fresh namespace, deleted afterwards), ``release`` (the chart as
release ``nepse-predictor`` in it, driven by Helm 4, uninstalled afterwards) and
``report_timing`` (prints ``TIMING name=seconds ...`` lines, repeated in the run's summary).

Tools come from .tools/ (scripts/install-tools.sh); a missing tool fails the session with the
command that installs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from e2e_cluster import Cluster, Release

from testkit.cluster import control_plane
from testkit.pytest_output import fresh_namespace, print_past_capture


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A real control plane with the CRDs installed (see the module docstring)."""
    yield from control_plane(lambda line: print_past_capture(request.config, f"e2e: {line}"))


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    with fresh_namespace(cluster, request.node.name) as name:
        yield name


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Iterator[Release]:
    """The chart's release in the test's namespace; uninstalled afterwards if still there."""
    r = Release(cluster, namespace)
    yield r
    r.helm("uninstall", r.name, "--ignore-not-found", check=False)


TIMINGS = pytest.StashKey[list[str]]()


@pytest.fixture
def report_timing(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Print ``TIMING key=seconds ...`` and repeat it in the summary at the end of the run."""

    def report(*labels: str, **seconds: float) -> None:
        line = " ".join(["TIMING", *labels, *(f"{k}={v:.2f}" for k, v in seconds.items())])
        print(line)
        request.config.stash.setdefault(TIMINGS, []).append(line)

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(TIMINGS, [])
    if lines:
        terminalreporter.section("control-plane timings")
        for line in lines:
            terminalreporter.write_line(line)
