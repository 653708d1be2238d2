"""The chart installed as one Helm release in one namespace of a test cluster."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testkit.cluster import ROOT, Cluster

CHART = ROOT / "charts" / "nepse-predictor"
RELEASE = "nepse-predictor"
# Helm's own deadline for --wait, and the subprocess deadline around it.
HELM_TIMEOUT = 120


def parse_manifest(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def rollout_complete(deployment: dict[str, Any]) -> bool:
    """What `kubectl rollout status` waits for: every pod updated and available, none old."""
    spec, status = deployment["spec"], deployment.get("status", {})
    wanted = spec.get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and status.get("readyReplicas", 0) == wanted
    )


@dataclass
class Release:
    """The chart installed as release ``nepse-predictor`` in one namespace, driven by Helm 4."""

    cluster: Cluster
    namespace: str
    name: str = RELEASE

    def helm(self, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("timeout", HELM_TIMEOUT + 60)
        return self.cluster.helm(*args, "--namespace", self.namespace, **kwargs)

    def install(
        self, *args: str | Path, wait: bool = True, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        waiting = ["--wait", f"--timeout={HELM_TIMEOUT}s"] if wait else []
        return self.helm("install", self.name, CHART, *waiting, *args, check=check)

    def upgrade(
        self, *args: str | Path, wait: bool = False, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        waiting = ["--wait", f"--timeout={HELM_TIMEOUT}s"] if wait else []
        return self.helm("upgrade", self.name, CHART, *waiting, *args, check=check)

    def rollback(self, revision: int, *, wait: bool = False) -> subprocess.CompletedProcess[str]:
        waiting = ["--wait", f"--timeout={HELM_TIMEOUT}s"] if wait else []
        return self.helm("rollback", self.name, str(revision), *waiting)

    def uninstall(self, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.helm(
            "uninstall", self.name, "--wait", f"--timeout={HELM_TIMEOUT}s", check=check
        )

    def manifest(self) -> list[dict[str, Any]]:
        return parse_manifest(self.helm("get", "manifest", self.name).stdout)

    def history(self) -> list[dict[str, Any]]:
        return json.loads(self.helm("history", self.name, "-o", "json").stdout)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.cluster.kubectl_json("-n", self.namespace, "get", kind, name)

    def items(self, kind: str, *selector: str) -> list[dict[str, Any]]:
        args = ["-l", ",".join(selector)] if selector else []
        return self.cluster.kubectl_json("-n", self.namespace, "get", kind, *args)["items"]

    def pods(self, *selector: str) -> list[dict[str, Any]]:
        """Pods matching ``selector`` that are not being deleted."""
        return [
            p for p in self.items("pods", *selector) if "deletionTimestamp" not in p["metadata"]
        ]

    def wait_rolled_out(self, deployment: str, timeout: float = HELM_TIMEOUT) -> dict[str, Any]:
        return self.cluster.wait_until(
            f"deployment {self.namespace}/{deployment} to finish its rollout",
            lambda: (d := self.get("deployment", deployment)) and rollout_complete(d) and d,
            timeout=timeout,
            interval=0.1,
        )

    def replicasets(self, deployment: str) -> list[dict[str, Any]]:
        return [
            rs
            for rs in self.items("replicasets")
            if any(o["name"] == deployment for o in rs["metadata"].get("ownerReferences", []))
        ]

    def current_replicaset(self, deployment: str) -> dict[str, Any]:
        """The ReplicaSet of the Deployment's current revision (what its pod template made)."""
        revision = self.get("deployment", deployment)["metadata"]["annotations"][
            "deployment.kubernetes.io/revision"
        ]
        (rs,) = [
            rs
            for rs in self.replicasets(deployment)
            if rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == revision
        ]
        return rs

    def endpoint_pods(self, service: str) -> dict[str, bool] | None:
        """Pod name -> ready, over the Service's EndpointSlices made by the EndpointSlice
        controller; None while any endpoint is not a pod or a slice has another manager."""
        slices = self.items("endpointslices", f"kubernetes.io/service-name={service}")
        pods: dict[str, bool] = {}
        for s in slices:
            if s["metadata"]["labels"].get("endpointslice.kubernetes.io/managed-by") != (
                "endpointslice-controller.k8s.io"
            ):
                return None
            for endpoint in s.get("endpoints") or []:
                ref = endpoint.get("targetRef") or {}
                if ref.get("kind") != "Pod":
                    return None
                pods[ref["name"]] = bool(endpoint.get("conditions", {}).get("ready"))
        return pods
