"""With autoscaling on, each predictor workload gets an HPA that the API server accepts and the
real HPA controller acts on, and the workloads leave `replicas` to it.

Checked per case: `helm get manifest` renders no `replicas` for an autoscaled Deployment (and
`replicas: 0` for an idle colour scaled down, which has no HPA); Helm's server-side apply does
not own `spec.replicas` in the stored Deployment; every HPA's scaleTargetRef names a Deployment
of the release, one HPA per autoscaled Deployment; the HPA controller scales each target to its
minReplicas; and a later `helm upgrade` that changes the slot leaves the HPA's replica count
alone (Helm, Argo CD and the HPA do not fight over it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e_cluster import (
    CHART,
    Release,
    container,
    environment_value_files,
    rollout_complete,
    value_args,
)

pytestmark = pytest.mark.slow

CASES = {
    "canary-none": [CHART / "ci" / "05-canary-none-values.yaml"],
    "bluegreen-idle-scaled-down": [CHART / "ci" / "09-bluegreen-none-values.yaml"],
    "prod": environment_value_files("prod"),
}


def _helm_owns_replicas(deployment: dict[str, Any]) -> bool:
    return any(
        "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})
        for entry in deployment["metadata"]["managedFields"]
        if entry["manager"] == "helm"
    )


def _at_min_replicas(release: Release, name: str) -> dict[str, Any] | None:
    """The HPA once its controller has read the target's scale and scaled it to minReplicas.

    Without a metrics API (none here) the controller still enforces minReplicas; it reports
    `desiredReplicas` only when it rescales, so the target's replicas are what is checked.
    """
    hpa = release.get("hpa", name)
    wanted = hpa["spec"]["minReplicas"]
    conditions = {c["type"]: c["status"] for c in hpa.get("status", {}).get("conditions", [])}
    if conditions.get("AbleToScale") != "True":
        return None
    deployment = release.get("deployment", hpa["spec"]["scaleTargetRef"]["name"])
    if deployment["spec"].get("replicas") != wanted or not rollout_complete(deployment):
        return None
    return hpa


@pytest.mark.parametrize("files", CASES.values(), ids=CASES.keys())
def test_hpas_target_the_workloads_and_own_their_replicas(
    release: Release, files: list[Path]
) -> None:
    release.install(*value_args(*files))
    manifest = release.manifest()
    deployments = {
        o["metadata"]["name"]: o
        for o in manifest
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "predictor"
    }
    rendered_hpas = [o for o in manifest if o["kind"] == "HorizontalPodAutoscaler"]
    assert rendered_hpas, "autoscaling is on, yet no HPA was rendered"

    targets = [h["spec"]["scaleTargetRef"] for h in rendered_hpas]
    assert all(t["apiVersion"] == "apps/v1" and t["kind"] == "Deployment" for t in targets)
    autoscaled = sorted(t["name"] for t in targets)
    assert len(set(autoscaled)) == len(autoscaled), "two HPAs scale the same Deployment"
    assert set(autoscaled) <= set(deployments), f"an HPA targets no Deployment: {autoscaled}"
    for name, rendered in deployments.items():
        if name in autoscaled:
            assert "replicas" not in rendered["spec"], f"{name} has an HPA and replicas"
        else:
            # Only an idle colour scaled to zero goes without an HPA.
            assert rendered["spec"]["replicas"] == 0, f"{name} has neither an HPA nor 0 replicas"

    for name in autoscaled:
        stored = release.cluster.kubectl_json(
            "-n", release.namespace, "get", "deployment", name, "--show-managed-fields"
        )
        assert not _helm_owns_replicas(stored), f"helm's field manager owns {name} spec.replicas"

    scaled: dict[str, int] = {}
    for rendered in rendered_hpas:
        name, target = rendered["metadata"]["name"], rendered["spec"]["scaleTargetRef"]
        assert release.get("hpa", name)["spec"]["scaleTargetRef"] == target
        hpa = release.cluster.wait_until(
            f"the HPA controller to scale {target['name']} to its minReplicas",
            lambda name=name: _at_min_replicas(release, name),
            timeout=90,
        )
        scaled[target["name"]] = hpa["spec"]["minReplicas"]
    assert any(n > 1 for n in scaled.values()), "no HPA scaled above the API's default of 1"

    # A promotion-like upgrade rolls every workload but keeps the HPA's replica counts.
    release.upgrade(*value_args(*files), "--set", "image.repository=registry.invalid/nepse")
    for name, replicas in scaled.items():
        deployment = release.wait_rolled_out(name)
        image = container(deployment["spec"]["template"], "predictor")["image"]
        assert image.startswith("registry.invalid/nepse:")
        assert deployment["spec"]["replicas"] == replicas, f"the upgrade reset {name}'s replicas"
