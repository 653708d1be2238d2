"""Smoke tests of the local control plane: real controllers, real admission, real CRDs."""

from __future__ import annotations

import time

import pytest
from e2e_cluster import Cluster, CommandError

pytestmark = pytest.mark.slow

APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.invalid/web:1.0.0
          ports:
            - {name: http, containerPort: 8000}
          readinessProbe:
            httpGet: {path: /ready, port: http}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
"""


def test_deployment_becomes_available_and_its_service_gets_endpoint_slices(
    cluster: Cluster, namespace: str
) -> None:
    started = time.monotonic()
    cluster.apply(APP, namespace)
    cluster.kubectl("-n", namespace, "rollout", "status", "deployment/web", "--timeout=90s")
    available = time.monotonic() - started

    deployment = cluster.kubectl_json("-n", namespace, "get", "deployment", "web")
    assert deployment["status"]["availableReplicas"] == 2
    nodes = {n["metadata"]["name"] for n in cluster.kubectl_json("get", "nodes")["items"]}
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", "app=web")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"
        assert pod["spec"]["nodeName"] in nodes
    pod_ips = sorted(p["status"]["podIP"] for p in pods)

    def ready_endpoints() -> list[str] | None:
        slices = cluster.kubectl_json(
            "-n", namespace, "get", "endpointslices", "-l", "kubernetes.io/service-name=web"
        )["items"]
        addresses = sorted(
            address
            for s in slices
            for e in s.get("endpoints") or []
            if e.get("conditions", {}).get("ready")
            for address in e["addresses"]
        )
        return addresses if addresses == pod_ips else None

    cluster.wait_until("EndpointSlices of Service web listing both pods", ready_endpoints)
    print(f"deployment available after {available:.1f}s")


def test_rbac_is_enforced(cluster: Cluster, namespace: str) -> None:
    sa = f"system:serviceaccount:{namespace}:default"
    result = cluster.kubectl("auth", "can-i", "create", "deployments", "--as", sa, check=False)
    assert result.stdout.strip() == "no"
    denied = cluster.kubectl("-n", namespace, "get", "secrets", "--as", sa, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


def test_admission_rejects_objects_in_a_missing_namespace(cluster: Cluster) -> None:
    with pytest.raises(CommandError, match='namespaces "no-such-namespace" not found'):
        cluster.kubectl("-n", "no-such-namespace", "create", "configmap", "c")


@pytest.mark.parametrize(
    "crd",
    [
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
        "httproutes.gateway.networking.k8s.io",
        "services.serving.knative.dev",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
        "applications.argoproj.io",
        "rollouts.argoproj.io",
    ],
)
def test_crd_is_established(cluster: Cluster, crd: str) -> None:
    obj = cluster.kubectl_json("get", "crd", crd)
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Established"] == "True"


def test_api_server_validates_custom_resources(cluster: Cluster, namespace: str) -> None:
    bad = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  rules:
    - backendRefs:
        - {name: web, port: 80, weight: -1}
"""
    with pytest.raises(CommandError, match=r"spec\.rules\[0\]\.backendRefs\[0\]\.weight"):
        cluster.apply(bad, namespace)
