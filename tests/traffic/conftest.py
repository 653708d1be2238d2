"""Fixtures for the traffic tier: real pods on a real node, real requests through them.

The session-scoped ``real_cluster`` starts ``scripts/real-cluster-up.sh`` (etcd, the control
plane, and one real node: containerd, kubelet, kube-proxy and CoreDNS in a network namespace),
or reuses the one already up (``make real-cluster-up``; nothing is torn down then). When it
started the cluster it removes it at the end, also after failures, and fails the session if
the host is not as it was before (see hostcheck.py).

``node_images`` builds the service image with podman (as the container tier does) and loads
it, under two tags, into the node's containerd; ``model_store`` serves two trained model
versions over HTTP on the host end of the node's link, where the chart's ``fetch-model`` init
container downloads them (``model.source=url``), checked against their manifest sha256.
"""

from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostcheck import HostState

from nepse_predictor import artifacts
from testkit.cluster import BIN, ROOT, TOOLS, Cluster, run_tool, tools_env
from testkit.pytest_output import fresh_namespace, print_past_capture
from testkit.release import Release

STATE = Path(os.environ.get("NEPSE_REAL_CLUSTER_DIR", TOOLS / "real-cluster"))
HOST_IP = "10.231.0.1"
NODE_NAME = "nepse-node"
IMAGE = "localhost/nepse-predictor"
BUILT_IMAGE = os.environ.get("NEPSE_IMAGE", "localhost/nepse-predictor:dev")
TAGS = ("traffic-a", "traffic-b")
VALUES = Path(__file__).with_name("values.yaml")
LINES = pytest.StashKey[list[str]]()


def report_line(config: pytest.Config, line: str) -> None:
    """Print ``line`` now (past pytest's capture) and again in the run's summary."""
    config.stash.setdefault(LINES, []).append(line)
    print_past_capture(config, line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(LINES, [])
    if lines:
        terminalreporter.section("traffic")
        for line in lines:
            terminalreporter.write_line(line)


def _script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_tool([ROOT / "scripts" / name, *args], tools_env(), check=False, timeout=timeout)


@pytest.fixture(scope="session")
def real_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("the traffic tier runs a real node and needs root", pytrace=False)
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
        report_line(request.config, f"traffic: reusing the real cluster of {kubeconfig}")
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


@pytest.fixture(scope="session")
def node_images(real_cluster: Cluster) -> tuple[str, ...]:
    """The service image under the two tags the scenarios release, inside the node."""
    build = _script("container/build-image.sh", "--tag", BUILT_IMAGE, timeout=1500)
    if build.returncode != 0:
        pytest.fail(f"building {BUILT_IMAGE} failed:\n{build.stderr[-3000:]}", pytrace=False)
    images = []
    for tag in TAGS:
        run_tool(["podman", "tag", BUILT_IMAGE, f"{IMAGE}:{tag}"], tools_env())
        images.append(f"{IMAGE}:{tag}")
    load = _script("real-cluster-load-image.sh", *images, timeout=300)
    if load.returncode != 0:
        pytest.fail(f"loading the images failed:\n{load.stderr}", pytrace=False)
    return TAGS


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


@dataclass
class TrafficRelease:
    """The chart in one namespace of the real cluster, with the tier's base values."""

    release: Release
    store: ModelStore
    router: tuple[str, str]

    def base_args(self) -> list[str]:
        repository, tag = self.router
        return [
            "-f", str(VALUES),
            "--set", f"model.url.base={self.store.base_url}",
            "--set", f"traffic.router.image.repository={repository}",
            "--set", f"traffic.router.image.tag={tag}",
        ]  # fmt: skip

    def slot(self, slot: str, tag: str, version: str) -> list[str]:
        return [
            "--set", f"slots.{slot}.imageTag={tag}",
            "--set", f"slots.{slot}.modelVersion={version}",
            "--set", f"slots.{slot}.modelSha256={self.store.sha256[version]}",
        ]  # fmt: skip

    def install(self, *args: str) -> None:
        self.release.install(*self.base_args(), *args)
        self.wait_routable()

    def upgrade(self, *args: str, wait: bool = False) -> None:
        self.release.upgrade(*self.base_args(), *args, wait=wait)

    def wait_routable(self, timeout: float = 30.0) -> None:
        """Wait until kube-proxy forwards every Service of the release.

        `helm install --wait` returns when the pods are ready, a moment before kube-proxy has
        programmed the new Services: until then a connection is refused (no request has been
        in flight before the first install, so this is not a release losing requests).
        """
        slices = self.release.items("endpointslice")
        for svc in self.release.items("service"):
            ip, port = svc["spec"].get("clusterIP"), svc["spec"]["ports"][0]["port"]
            name = svc["metadata"]["name"]
            backed = any(
                e.get("conditions", {}).get("ready")
                for es in slices
                if es["metadata"].get("labels", {}).get("kubernetes.io/service-name") == name
                for e in es.get("endpoints") or []
            )
            if not ip or ip == "None" or not backed:
                continue
            self.release.cluster.wait_until(
                f"Service {name} to forward connections",
                lambda ip=ip, port=port: _connects(ip, port),
                timeout=timeout,
                interval=0.1,
            )

    def service_address(self, name: str) -> tuple[str, int]:
        svc = self.release.get("service", name)
        return svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"]


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def traffic_release(
    real_cluster: Cluster,
    node: dict[str, str],
    node_images: tuple[str, ...],
    model_store: ModelStore,
    router_image: tuple[str, str],
    namespace: str,
) -> Iterator[TrafficRelease]:
    r = Release(real_cluster, namespace)
    yield TrafficRelease(r, model_store, router_image)
    r.helm("uninstall", r.name, "--ignore-not-found", "--wait", check=False)


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    return functools.partial(report_line, request.config)
