"""Bad values never reach the cluster: Helm refuses them before it creates anything.

`helm install` with a value the schema (or validate.yaml) rejects fails with a message that
names the value, and the namespace is left as it was: no workload, no Service, no custom
resource, no release record. `helm upgrade` of a running release with a bad value fails the
same way and leaves the stored objects and the release history untouched.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from e2e_cluster import Cluster, Release, environment_value_files, value_args

pytestmark = pytest.mark.slow

# The chart has no default release: every install names the stable slot.
STABLE = [
    "--set-string",
    "slots.stable.imageTag=0.1.0,slots.stable.modelVersion=2026.11.01-1a2b3c4",
]
CANARY = [
    *STABLE,
    "--set",
    "rollout.strategy=canary",
    "--set-string",
    "slots.canary.imageTag=0.2.0,slots.canary.modelVersion=2026.11.20-b2c3d4e",
]
BAD_INSTALLS = {
    "unknown-strategy": (
        ["--set", "rollout.strategy=bogus"],
        "at '/rollout/strategy': value must be one of 'rolling', 'canary', 'blueGreen', 'shadow'",
    ),
    "canary-weight-above-100": (
        [*CANARY, "--set", "rollout.canary.weight=150"],
        "at '/rollout/canary/weight': maximum: got 150, want 100",
    ),
    "negative-mirror-percentage": (
        ["--set-json", "rollout.shadow.percent=-5"],
        "at '/rollout/shadow/percent': minimum: got -5, want 0",
    ),
    "unknown-traffic-provider": (
        ["--set", "traffic.provider=nginx"],
        "at '/traffic/provider': value must be one of 'none', 'router', 'istio', 'gatewayAPI'",
    ),
    "misspelt-key": (
        ["--set", "rollout.canary.wieght=10"],
        "at '/rollout/canary': additional properties 'wieght' not allowed",
    ),
    "shadow-without-a-traffic-provider": (
        [
            "--set",
            "rollout.strategy=shadow",
            "--set-string",
            "slots.shadow.imageTag=0.2.0,slots.shadow.modelVersion=2026.11.20-b2c3d4e",
        ],
        "rollout.strategy=shadow needs traffic.provider router, istio or gatewayAPI",
    ),
    "canary-slot-left-empty": (
        [*STABLE, "--set", "rollout.strategy=canary"],
        "slots.canary.imageTag is empty: rollout.strategy=canary deploys the canary slot; "
        "set the image tag it runs",
    ),
    "no-release-at-all": (
        [],
        "slots.stable.modelVersion is empty: rollout.strategy=rolling deploys the stable slot; "
        "set the model version it serves",
    ),
    "cpu-request-not-a-quantity": (
        [*STABLE, "--set", "resources.requests.cpu=lots"],
        "at '/resources/requests/cpu'",
    ),
    "surge-and-unavailable-zero": (
        [*STABLE, "--set", "rollout.rolling.maxSurge=0,rollout.rolling.maxUnavailable=0"],
        "rollout.rolling.maxSurge=0 and rollout.rolling.maxUnavailable=0: both 0",
    ),
    "quarantined-model-in-dev": (
        [
            *value_args(*environment_value_files("dev")),
            "--set-string",
            "quarantine.modelVersions[0]=2026.11.24-e93b5a2",
        ],
        'slots.stable.modelVersion "2026.11.24-e93b5a2" is quarantined',
    ),
}

# Objects every namespace has before anyone installs anything.
BUILT_IN = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


@pytest.fixture(scope="module")
def namespaced_kinds(cluster: Cluster) -> str:
    """Every listable namespaced resource type (built-in and from the installed CRDs)."""
    out = cluster.kubectl("api-resources", "--namespaced", "--verbs=list", "-o", "name").stdout
    # Events record what happened, not what was created.
    return ",".join(k for k in out.split() if k not in {"events", "events.events.k8s.io"})


def _contents(release: Release, kinds: str) -> set[tuple[str, str]]:
    items = release.cluster.kubectl_json("-n", release.namespace, "get", kinds)["items"]
    return {(o["kind"], o["metadata"]["name"]) for o in items}


@pytest.mark.parametrize(("args", "message"), BAD_INSTALLS.values(), ids=BAD_INSTALLS.keys())
def test_install_with_bad_values_fails_naming_the_value_and_creates_nothing(
    release: Release, namespaced_kinds: str, args: list[str], message: str
) -> None:
    result = release.install(*args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert _contents(release, namespaced_kinds) <= BUILT_IN
    assert release.helm("status", release.name, check=False).returncode != 0


def _snapshot(release: Release) -> dict[tuple[str, str], Any]:
    """The spec (or data) of every object of the release, as stored."""
    manifest = yaml.safe_dump_all(release.manifest())
    items = release.cluster.kubectl_json("-n", release.namespace, "get", "-f", "-", input=manifest)[
        "items"
    ]
    return {(o["kind"], o["metadata"]["name"]): o.get("spec", o.get("data")) for o in items}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "rollout.canary.weight=150"], "at '/rollout/canary/weight': maximum"),
        (["--set", "traffic.provider=linkerd"], "at '/traffic/provider': value must be one of"),
    ],
    ids=["canary-weight-above-100", "unknown-traffic-provider"],
)
def test_upgrade_with_bad_values_fails_and_leaves_the_release_as_it_was(
    release: Release, namespaced_kinds: str, args: list[str], message: str
) -> None:
    good = [*CANARY, "--set", "traffic.provider=istio", "--set", "rollout.canary.weight=10"]
    release.install(*good)
    before = _snapshot(release)
    contents = _contents(release, namespaced_kinds)
    weights_before = release.get("virtualservice", "nepse-predictor")["spec"]["http"][-1]

    result = release.upgrade(*good, *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert _snapshot(release) == before
    assert _contents(release, namespaced_kinds) == contents
    assert release.get("virtualservice", "nepse-predictor")["spec"]["http"][-1] == weights_before
    assert [h["revision"] for h in release.history()] == [1]
