"""The real node as pytest fixtures, for every tier that runs real pods (traffic, Argo CD).

``real_cluster`` starts ``scripts/real-cluster-up.sh`` (etcd, the control plane with
metrics-server, and one real node: containerd, kubelet, kube-proxy and CoreDNS in a network
namespace), or reuses the one already up (``make real-cluster-up``; nothing is torn down
then). When it started the cluster it removes it at the end, also after failures, and fails
the session if the host is not as it was before (see hostcheck.py).

``node_images`` builds the service image with podman (as the container tier does) and loads
it, under two tags, into the node's containerd; ``model_store`` serves two trained model
versions over HTTP on the host end of the node's link, where the chart's ``fetch-model`` init
container downloads them (``model.source=url``), checked against their manifest sha256.

A tier's conftest calls ``register(config)`` from its ``pytest_configure`` for the fixtures.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nepse_predictor import artifacts
from testkit.cluster import BIN, ROOT, TOOLS, Cluster, run_tool, tools_env
from testkit.hostcheck import HostState
from testkit.pytest_output import fresh_namespace, print_reported, report_line

STATE = Path(os.environ.get("NEPSE_REAL_CLUSTER_DIR", TOOLS / "real-cluster"))
HOST_IP = "10.231.0.1"
NODE_NAME = "nepse-node"
IMAGE = "localhost/nepse-predictor"
BUILT_IMAGE = os.environ.get("NEPSE_IMAGE", "localhost/nepse-predictor:dev")


def register(config: pytest.Config) -> None:
    """Make this module's fixtures available to the session (once, whichever tier asks)."""
    if not config.pluginmanager.has_plugin(__name__):
        config.pluginmanager.register(sys.modules[__name__], __name__)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_reported(terminalreporter, "real node")


def _script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_tool([ROOT / "scripts" / name, *args], tools_env(), check=False, timeout=timeout)


@pytest.fixture(scope="session")
def real_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("this tier runs a real node and needs root", pytrace=False)
    kubeconfig = STATE / "kubeconfig"
    already_up = kubeconfig.is_file() and (
        run_tool(
            [BIN / "kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/readyz"],
            tools_env(),
            check=False,
            timeout=20,
        ).returncode
        == 0
    )
    if already_up:
        report_line(request.config, f"NODE reusing the real cluster of {kubeconfig}")
        yield Cluster(kubeconfig=kubeconfig, owned=False)
        return

    before = HostState.read(STATE)

    def teardown() -> None:
        started = time.monotonic()
        first = _script("real-cluster-down.sh", timeout=180)
        seconds = time.monotonic() - started
        second = _script("real-cluster-down.sh", timeout=60)
        problems = HostState.read(STATE).differences(before)
        if first.returncode or second.returncode:
            problems.append(f"real-cluster-down.sh failed:\n{first.stderr}\n{second.stderr}")
        report_line(
            request.config,
            f"NODE teardown seconds={seconds:.1f} clean={'false' if problems else 'true'}",
        )
        assert not problems, "the real cluster left traces on the host:\n" + "\n".join(problems)

    request.addfinalizer(teardown)
    started = time.monotonic()
    result = _script("real-cluster-up.sh", timeout=300)
    if result.returncode != 0:
        pytest.fail(f"scripts/real-cluster-up.sh failed:\n{result.stderr}", pytrace=False)
    cluster = Cluster(kubeconfig=Path(result.stdout.strip().splitlines()[-1]), owned=True)
    cluster.startup_seconds = time.monotonic() - started
    yield cluster


@pytest.fixture(scope="session")
def node(real_cluster: Cluster, request: pytest.FixtureRequest) -> dict[str, str]:
    info = real_cluster.kubectl_json("get", "node", NODE_NAME)["status"]["nodeInfo"]
    report_line(
        request.config,
        f"NODE name={NODE_NAME} runtime={info['containerRuntimeVersion']} "
        f"kubelet={info['kubeletVersion']} up_seconds={real_cluster.startup_seconds:.1f}",
    )
    return info


def load_service_image(tags: tuple[str, ...]) -> None:
    """Build the service image with podman and load it into the node as IMAGE:TAG per tag."""
    build = _script("container/build-image.sh", "--tag", BUILT_IMAGE, timeout=1500)
    if build.returncode != 0:
        pytest.fail(f"building {BUILT_IMAGE} failed:\n{build.stderr[-3000:]}", pytrace=False)
    images = []
    for tag in tags:
        run_tool(["podman", "tag", BUILT_IMAGE, f"{IMAGE}:{tag}"], tools_env())
        images.append(f"{IMAGE}:{tag}")
    load = _script("real-cluster-load-image.sh", *images, timeout=300)
    if load.returncode != 0:
        pytest.fail(f"loading the images failed:\n{load.stderr}", pytrace=False)


@dataclass(frozen=True)
class ModelStore:
    base_url: str
    sha256: dict[str, str]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def model_store(
    real_cluster: Cluster, trained_model: Path, second_model: Path
) -> Iterator[ModelStore]:
    """Model versions v1 and v2 over HTTP on the host end of the node's link."""
    root = trained_model.parent
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer((HOST_IP, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sha = {
        d.name: artifacts.sha256_of(d / artifacts.MANIFEST) for d in (trained_model, second_model)
    }
    yield ModelStore(f"http://{HOST_IP}:{server.server_address[1]}", sha)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def router_image(real_cluster: Cluster) -> tuple[str, str]:
    repository, tag = (STATE / "router-image").read_text().strip().rsplit(":", 1)
    return repository, tag


@pytest.fixture
def namespace(real_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_namespace(real_cluster, request.node.name) as name:
        yield name


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a result line past pytest's capture, and again in the run's summary."""
    return functools.partial(report_line, request.config)
