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

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_cluster import (
    BIN,
    CRD_PROJECTS,
    CRDS,
    REQUIRED_TOOLS,
    ROOT,
    TOOLS,
    Cluster,
    Release,
    run_tool,
    tools_env,
)


def _reusable_kubeconfig() -> Path | None:
    explicit = os.environ.get("NEPSE_E2E_KUBECONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            pytest.fail(f"NEPSE_E2E_KUBECONFIG={explicit}: no such file")
        return path
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig and ":" not in kubeconfig:
        path = Path(kubeconfig)
        # Only a cluster made by scripts/cluster-up.sh, which writes kwokctl.yaml beside it.
        if path.is_file() and (path.parent / "kwokctl.yaml").is_file():
            return path
    return None


def _check_tools() -> None:
    missing = [t for t in REQUIRED_TOOLS if not (BIN / t).exists()]
    missing += [f"crds/{p}" for p in CRD_PROJECTS if not (CRDS / p).is_dir()]
    if missing:
        pytest.fail(
            f"missing under {TOOLS}: {', '.join(missing)}; run scripts/install-tools.sh",
            pytrace=False,
        )


def _install_crds(cluster: Cluster) -> None:
    files = [arg for project in CRD_PROJECTS for arg in ("-f", str(CRDS / project))]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *files, timeout=180)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd", "--all", "--timeout=120s", timeout=150
    )


def _report(config: pytest.Config, line: str) -> None:
    """Print a line to the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


STATE_PREFIX = "nepse-e2e-"


def _cluster_env(state: Path) -> dict[str, str]:
    """Environment for scripts/cluster-{up,down}.sh of the cluster kept in ``state``."""
    env = tools_env()
    env["NEPSE_CLUSTER_DIR"] = str(state / "cluster")
    env["NEPSE_CLUSTER_NAME"] = "e2e-" + state.name.removeprefix(STATE_PREFIX).split("-")[0]
    return env


def _remove_abandoned_clusters(config: pytest.Config) -> None:
    """Stop clusters left behind by test sessions that were killed before their teardown."""
    for state in Path(tempfile.gettempdir()).glob(f"{STATE_PREFIX}*-*"):
        pid = state.name.removeprefix(STATE_PREFIX).split("-")[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        _report(config, f"e2e: removing the cluster abandoned by pid {pid} in {state}")
        run_tool(
            [ROOT / "scripts" / "cluster-down.sh"], _cluster_env(state), check=False, timeout=120
        )
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A real control plane with the CRDs installed (see the module docstring)."""
    _check_tools()
    reuse = _reusable_kubeconfig()
    if reuse is not None:
        c = Cluster(kubeconfig=reuse, owned=False)
        c.kubectl("get", "--raw", "/readyz", timeout=30)
        _install_crds(c)
        _report(request.config, f"e2e: reusing the cluster of {reuse}")
        yield c
        return

    _remove_abandoned_clusters(request.config)
    state = Path(tempfile.mkdtemp(prefix=f"{STATE_PREFIX}{os.getpid()}-"))
    env = _cluster_env(state)

    def teardown() -> None:
        result = run_tool([ROOT / "scripts" / "cluster-down.sh"], env, check=False, timeout=120)
        if result.returncode != 0:
            _report(request.config, f"e2e: cluster-down failed:\n{result.stderr}")
        shutil.rmtree(state, ignore_errors=True)

    request.addfinalizer(teardown)
    started = time.monotonic()
    result = run_tool([ROOT / "scripts" / "cluster-up.sh"], env, check=False, timeout=400)
    if result.returncode != 0:
        pytest.fail(f"scripts/cluster-up.sh failed:\n{result.stderr}", pytrace=False)
    c = Cluster(kubeconfig=Path(result.stdout.strip().splitlines()[-1]), owned=True)
    c.state_dir = state
    up = time.monotonic() - started
    _install_crds(c)
    c.startup_seconds = time.monotonic() - started
    _report(
        request.config,
        f"e2e: control plane up in {up:.1f}s, CRDs established after {c.startup_seconds:.1f}s",
    )
    yield c


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().removeprefix("test_"))
    name = f"{base[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    cluster.wait_until(
        f"the default ServiceAccount in namespace {name}",
        lambda: cluster.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
        timeout=30,
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


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
