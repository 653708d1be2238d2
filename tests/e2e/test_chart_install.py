"""`helm install --wait` of every ci/*-values.yaml and every environment on a real control plane.

Each case installs the chart with Helm 4 into its own namespace, then checks what the cluster
made of it: every rendered object is stored as rendered (the API server may only add defaults),
every Deployment finishes its rollout with Running and Ready pods on the fake nodes, every
Service's EndpointSlices hold exactly the ready pods its selector picks, and `helm uninstall`
removes the lot. Knative Services have no controller here: they are checked as stored only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_cluster import (
    CI_VALUES,
    ENVIRONMENTS,
    Cluster,
    Release,
    environment_value_files,
    missing_from,
    value_args,
)

pytestmark = pytest.mark.slow


def _merged_values(files: list[Path]) -> dict[str, Any]:
    """The values a list of -f files sets, merged the way Helm merges them (maps deeply)."""

    def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in top.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out

    merged: dict[str, Any] = {}
    for f in files:
        merged = merge(merged, yaml.safe_load(f.read_text()) or {})
    return merged


def _provide_model_claim(cluster: Cluster, namespace: str, claim: str) -> Callable[[], None]:
    """The PersistentVolumeClaim that `model.source=pvc` mounts, bound to a static volume.

    The chart mounts an existing claim (the model store is not the release's to create); the
    ci values name one, so the test creates it the way an operator would, before the install.
    """
    volume = f"{namespace}-models"
    cluster.apply(
        f"""
apiVersion: v1
kind: PersistentVolume
metadata:
  name: {volume}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  persistentVolumeReclaimPolicy: Retain
  hostPath: {{path: /var/lib/nepse-models}}
  claimRef: {{namespace: {namespace}, name: {claim}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {claim}
  namespace: {namespace}
spec:
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: {volume}
  resources:
    requests: {{storage: 1Gi}}
"""
    )
    cluster.wait_until(
        f"claim {namespace}/{claim} to be bound",
        lambda: (
            cluster.kubectl_json("-n", namespace, "get", "pvc", claim)["status"].get("phase")
            == "Bound"
        ),
        timeout=60,
    )

    def remove() -> None:
        cluster.kubectl("delete", "pv", volume, "--wait=false", check=False)

    return remove


def _ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True"


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _install_and_check(
    cluster: Cluster,
    release: Release,
    files: list[Path],
    request: pytest.FixtureRequest,
) -> None:
    values = _merged_values(files)
    model = values.get("model", {})
    if model.get("source") == "pvc":
        request.addfinalizer(
            _provide_model_claim(cluster, release.namespace, model["pvc"]["claimName"])
        )

    started = time.monotonic()
    release.install(*value_args(*files))
    installed = time.monotonic() - started

    manifest = release.manifest()
    assert manifest, "the release rendered no objects"
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in manifest:
        by_kind.setdefault(obj["kind"], []).append(obj)
        assert obj["metadata"].get("namespace", release.namespace) == release.namespace

    # Everything rendered is stored, as rendered: the API server (with the CRDs' schemas) took it.
    stored = {
        (o["kind"], o["metadata"]["name"]): o
        for o in cluster.kubectl_json(
            "-n", release.namespace, "get", "-f", "-", input=yaml.safe_dump_all(manifest)
        )["items"]
    }
    for obj in manifest:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key in stored, f"{key} was rendered but is not in the cluster"
        assert missing_from(obj, stored[key]) == [], f"{key} is not stored as rendered"

    # Every Deployment finishes its rollout, with the replicas it was given (or an HPA's).
    nodes = {n["metadata"]["name"] for n in cluster.kubectl_json("get", "nodes")["items"]}
    for obj in by_kind.get("Deployment", []):
        name = obj["metadata"]["name"]
        deployment = release.wait_rolled_out(name, timeout=60)
        if "replicas" in obj["spec"]:
            assert deployment["spec"]["replicas"] == obj["spec"]["replicas"]
        pods = release.pods(_selector(obj["spec"]["selector"]["matchLabels"]))
        assert len(pods) == deployment["spec"]["replicas"]
        for pod in pods:
            assert _ready(pod), f"pod {pod['metadata']['name']} is not Running and Ready"
            assert pod["spec"]["nodeName"] in nodes

    # Every Service with a selector reaches exactly the ready pods it selects.
    for obj in by_kind.get("Service", []):
        if obj["apiVersion"] != "v1" or not obj["spec"].get("selector"):
            continue
        name, selector = obj["metadata"]["name"], _selector(obj["spec"]["selector"])

        def endpoints_match(name: str = name, selector: str = selector) -> bool:
            expected = {p["metadata"]["name"]: True for p in release.pods(selector) if _ready(p)}
            return release.endpoint_pods(name) == expected

        cluster.wait_until(f"Service {name} to list exactly its ready pods", endpoints_match)

    # A Knative Service has no controller here: stored as rendered (checked above) is all.
    for obj in by_kind.get("Service", []):
        if obj["apiVersion"].startswith("serving.knative.dev/"):
            traffic = stored[("Service", obj["metadata"]["name"])]["spec"]["traffic"]
            assert sum(t["percent"] for t in traffic) == 100

    print(f"installed in {installed:.2f}s: {sorted((k, len(v)) for k, v in by_kind.items())}")

    # `helm uninstall` removes every object and the release record.
    release.uninstall()
    left = cluster.kubectl(
        "-n",
        release.namespace,
        "get",
        "-f",
        "-",
        "--ignore-not-found",
        "-o",
        "name",
        input=yaml.safe_dump_all(manifest),
    ).stdout.split()
    assert left == []
    secrets = release.items("secrets", "owner=helm", f"name={release.name}")
    assert secrets == []


@pytest.mark.parametrize(
    "values_file", CI_VALUES, ids=[p.name.removesuffix("-values.yaml") for p in CI_VALUES]
)
def test_ci_values_install_and_every_workload_becomes_available(
    cluster: Cluster,
    release: Release,
    values_file: Path,
    request: pytest.FixtureRequest,
) -> None:
    _install_and_check(cluster, release, [values_file], request)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_installs_and_every_workload_becomes_available(
    cluster: Cluster,
    release: Release,
    env: str,
    request: pytest.FixtureRequest,
) -> None:
    _install_and_check(cluster, release, environment_value_files(env), request)


def test_every_ci_values_file_and_environment_is_covered() -> None:
    # An empty glob would make the parametrized tests above vanish without a failure.
    assert len(CI_VALUES) >= 17
    assert set(ENVIRONMENTS) >= {"dev", "staging", "prod"}
