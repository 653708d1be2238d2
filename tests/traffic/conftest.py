"""Fixtures for the traffic tier: real pods on a real node, real requests through them.

The real node, the service image, the model store and the router image come from
testkit/realnode.py; this file adds the chart release every scenario drives, with the tier's
base values (values.yaml).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit import realnode
from testkit.cluster import Cluster
from testkit.realnode import ModelStore, load_service_image
from testkit.release import Release

TAGS = ("traffic-a", "traffic-b")
VALUES = Path(__file__).with_name("values.yaml")


def pytest_configure(config: pytest.Config) -> None:
    realnode.register(config)


@pytest.fixture(scope="session")
def node_images(real_cluster: Cluster) -> tuple[str, ...]:
    """The service image under the two tags the scenarios release, inside the node."""
    load_service_image(TAGS)
    return TAGS


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
