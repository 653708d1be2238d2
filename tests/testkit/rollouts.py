"""The real Argo Rollouts controller, run on the host against a test cluster.

    with RolloutsController(cluster, workdir) as controller:   # waits for /healthz
        ...
        controller.log_tail()

The binary is ``.tools/bin/rollouts-controller`` (``scripts/install-tools.sh argo-rollouts``).
It watches every namespace, keeps its own objects in ``argo-rollouts`` (created if missing),
listens for metrics and health on free ports (all addresses: the controller has no flag for
the bind address), and talks to Istio's ``networking.istio.io/v1`` API. The cluster needs the
Argo Rollouts and Istio CRDs (the e2e and real-node clusters install them).

Helpers on a Rollout (``cluster``, ``namespace``, ``name``): ``rollout(...)`` (the object),
``promote(...)`` (what ``kubectl argo rollouts promote`` does: clear the pause conditions in
the status subresource), ``virtual_service_weights(...)`` (``{subset: weight}`` of one route;
``route_weights`` and ``route_names`` read a VirtualService already fetched), and
``promoted(obj)`` (fully promoted to its template).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testkit.cluster import BIN, Cluster
from testkit.net import free_port, wait_for_http
from testkit.processes import stop_process

CONTROLLER = BIN / "rollouts-controller"
NAMESPACE = "argo-rollouts"


class RolloutsController:
    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        if not CONTROLLER.exists():
            pytest.fail(
                f"missing {CONTROLLER}; run scripts/install-tools.sh argo-rollouts", pytrace=False
            )
        self.cluster = cluster
        self.log_path = workdir / "rollouts-controller.log"
        self.metrics_port = free_port()
        self.healthz_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        self.cluster.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n")
        env = {**os.environ, "POD_NAMESPACE": NAMESPACE}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(CONTROLLER),
                    "--kubeconfig",
                    str(self.cluster.kubeconfig),
                    "--namespace",
                    NAMESPACE,
                    "--leader-elect=false",
                    "--metricsPort",
                    str(self.metrics_port),
                    "--healthzPort",
                    str(self.healthz_port),
                    "--istio-api-version",
                    "v1",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_http(f"http://127.0.0.1:{self.healthz_port}/healthz", timeout=timeout)
        except TimeoutError as exc:
            self.stop()
            raise TimeoutError(f"{exc}; the controller's log:\n{self.log_tail()}") from exc

    def stop(self) -> None:
        stop_process(self.proc, grace=15)

    def __enter__(self) -> RolloutsController:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def rollout(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.kubectl_json("-n", namespace, "get", "rollouts.argoproj.io", name)


def promote(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "rollouts.argoproj.io",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"pauseConditions":null}}',
    )


def promoted(obj: dict[str, Any]) -> bool:
    """The controller has taken in the Rollout's spec and runs its template as stable, healthy."""
    status = obj.get("status") or {}
    return (
        status.get("phase") == "Healthy"
        and str(status.get("observedGeneration")) == str(obj["metadata"]["generation"])
        and bool(status.get("stableRS"))
        and status.get("stableRS") == status.get("currentPodHash")
    )


def virtual_service(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.kubectl_json("-n", namespace, "get", "virtualservices.networking.istio.io", name)


def route_weights(vs: dict[str, Any], route: str = "weighted") -> dict[str, int]:
    """``{subset: weight}`` of one route of a VirtualService."""
    for http in vs["spec"].get("http", []):
        if http.get("name") == route:
            return {d["destination"]["subset"]: d.get("weight", 0) for d in http["route"]}
    raise AssertionError(f"VirtualService has no route {route!r}: {vs['spec']}")


def route_names(vs: dict[str, Any]) -> list[str]:
    return [http.get("name", "") for http in vs["spec"].get("http", [])]


def virtual_service_weights(
    cluster: Cluster, namespace: str, name: str, route: str = "weighted"
) -> dict[str, int]:
    return route_weights(virtual_service(cluster, namespace, name), route)
