"""Blue-green: flipping `rollout.blueGreen.activeColor` moves live traffic to the other colour.

The EndpointSlices are made by the real EndpointSlice controller from the pods kwok runs.
With `traffic.provider=none` the main Service selects the active colour's pods itself; with
`router` the main Service selects the router pods, and the flip is a new router configuration
(rolled out to new router pods) that sends every request to the active colour's Service. In
both the preview Service selects the idle colour's pods. Neither colour's pods restart.

Measured: flip_seconds, from the start of `helm upgrade` until the main Service reaches only the
new colour (for the router: only router pods running the new configuration) and the preview
Service only the old one; flip_back_seconds the same for the way back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from e2e_cluster import Release, value_args

pytestmark = pytest.mark.slow

MAIN = "nepse-predictor"
PREVIEW = "nepse-predictor-preview"
ROUTER = "nepse-predictor-router"
OTHER = {"blue": "green", "green": "blue"}


def _values(tmp_path: Path, provider: str) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "rollout": {"strategy": "blueGreen", "blueGreen": {"activeColor": "blue"}},
                "traffic": {"provider": provider},
                "slots": {
                    "blue": {"imageTag": "0.1.0", "modelVersion": "2026.11.01-1a2b3c4"},
                    "green": {"imageTag": "0.2.0", "modelVersion": "2026.11.20-b2c3d4e"},
                },
                "replicaCount": 2,
            }
        )
    )
    return path


def _ready_pods(release: Release, *selector: str) -> dict[str, bool]:
    return {p["metadata"]["name"]: True for p in release.pods(*selector)}


def _colour_pods(release: Release, colour: str) -> dict[str, bool]:
    pods = _ready_pods(release, f"nepse-predictor/track={colour}")
    assert len(pods) == 2
    return pods


def _router_points_at(release: Release, colour: str) -> bool:
    conf = release.get("configmap", ROUTER)["data"]["nginx.conf"]
    return (
        re.search(rf"map \$nepse_request_id \$nepse_track \{{\s*default {colour};", conf)
        is not None
    )


def _flipped_to(release: Release, provider: str, active: str) -> bool:
    idle = OTHER[active]
    if release.endpoint_pods(PREVIEW) != _colour_pods(release, idle):
        return False
    if provider == "none":
        return release.endpoint_pods(MAIN) == _colour_pods(release, active)
    # router: the main Service reaches only router pods of the current ReplicaSet, whose
    # configuration sends everything to the active colour's Service, which holds its pods.
    deployment = release.get("deployment", ROUTER)
    if deployment["status"].get("observedGeneration") != deployment["metadata"]["generation"]:
        return False
    pod_hash = release.current_replicaset(ROUTER)["metadata"]["labels"]["pod-template-hash"]
    routers = _ready_pods(
        release, "app.kubernetes.io/component=router", f"pod-template-hash={pod_hash}"
    )
    return (
        len(routers) == 2
        and release.endpoint_pods(MAIN) == routers
        and _router_points_at(release, active)
        and release.endpoint_pods(f"nepse-predictor-{active}") == _colour_pods(release, active)
    )


@pytest.mark.parametrize("provider", ["none", "router"])
def test_flipping_the_active_colour_moves_the_main_and_preview_services(
    release: Release, tmp_path: Path, provider: str, report_timing: Callable[..., None]
) -> None:
    values = _values(tmp_path, provider)
    release.install(*value_args(values))
    predictor_rs = {c: release.current_replicaset(f"nepse-predictor-{c}") for c in OTHER}
    release.cluster.wait_until(
        "blue live, green on preview", lambda: _flipped_to(release, provider, "blue")
    )
    old_routers = set(release.endpoint_pods(MAIN) or {})

    seconds: dict[str, float] = {}
    for active, label in (("green", "flip_seconds"), ("blue", "flip_back_seconds")):
        started = time.monotonic()
        release.upgrade(*value_args(values), "--set", f"rollout.blueGreen.activeColor={active}")
        release.cluster.wait_until(
            f"{active} live and {OTHER[active]} on preview",
            lambda active=active: _flipped_to(release, provider, active),
            interval=0.1,
        )
        seconds[label] = time.monotonic() - started
        service = release.get("service", MAIN)["spec"]["selector"]
        preview = release.get("service", PREVIEW)["spec"]["selector"]
        assert preview["nepse-predictor/track"] == OTHER[active]
        if provider == "none":
            assert service["nepse-predictor/track"] == active
        else:
            assert service["app.kubernetes.io/component"] == "router"
            assert old_routers.isdisjoint(release.endpoint_pods(MAIN) or {})
            old_routers = set(release.endpoint_pods(MAIN) or {})

    # A flip only changes where requests go: no predictor pod was replaced.
    for colour, rs in predictor_rs.items():
        now = release.current_replicaset(f"nepse-predictor-{colour}")
        assert now["metadata"]["name"] == rs["metadata"]["name"]

    report_timing(f"bluegreen_provider={provider}", **seconds)
