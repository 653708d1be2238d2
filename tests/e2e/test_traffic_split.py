"""Canary weights and shadow mirror percentages reach the stored routing objects exactly.

One release per provider, stepped through a canary (or shadow) with `helm upgrade`; after each
step the VirtualService (istio), HTTPRoute (gatewayAPI), router ConfigMap (router) or Knative
Service is read back from the API server and compared with the exact expected value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_cluster import Release, value_args

pytestmark = pytest.mark.slow

HOST = "nepse-predictor"
RELEASED = {"imageTag": "0.1.0", "modelVersion": "2026.11.01-1a2b3c4"}
CANDIDATE = {"imageTag": "0.2.0", "modelVersion": "2026.11.20-b2c3d4e"}
PARENT = {"name": "public", "namespace": "gateway"}
CANARY_STEPS = [5, 25, 50, 100, 0]
SHADOW_STEPS = [100, 25, 12.5, 0.01, 0]


def _values(tmp_path: Path, provider: str, strategy: str) -> Path:
    values: dict[str, Any] = {
        "rollout": {"strategy": strategy},
        "slots": {"stable": RELEASED, strategy: CANDIDATE},
        "replicaCount": 1,
        "podDisruptionBudget": {"enabled": False},
    }
    if provider == "knative":
        values["platform"] = "knative"
    else:
        values["traffic"] = {"provider": provider, "gatewayAPI": {"parentRefs": [PARENT]}}
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _backends(rule: dict[str, Any]) -> list[tuple[str, int, int | None]]:
    return [(b["name"], b["port"], b.get("weight")) for b in rule["backendRefs"]]


def _canary_split(release: Release, provider: str) -> Any:
    """The split as stored, in a form that can be compared exactly."""
    if provider == "istio":
        return release.get("virtualservice", HOST)["spec"]["http"]
    if provider == "gatewayAPI":
        rules = release.get("httproute", HOST)["spec"]["rules"]
        return [(r.get("matches"), _backends(r)) for r in rules]
    if provider == "router":
        conf = release.get("configmap", f"{HOST}-router")["data"]["nginx.conf"]
        split = re.search(
            r"split_clients \"\$\{nepse_sticky_key\}\" \$nepse_weighted \{([^}]*)\}", conf
        )
        fixed = re.search(r"map \$nepse_sticky_key \$nepse_weighted \{\s*default (\w+);", conf)
        return split.group(1).split() if split else fixed.group(1)
    traffic = release.get("services.serving.knative.dev", HOST)["spec"]["traffic"]
    return [(t["tag"], t["percent"]) for t in traffic]


def _expected_canary_split(provider: str, w: int) -> Any:
    if provider == "istio":
        return [
            {
                "name": "canary-header",
                "match": [{"headers": {"x-canary": {"exact": "true"}}}],
                "route": [{"destination": {"host": HOST, "subset": "canary"}}],
            },
            {
                "name": "weighted",
                "route": [
                    {"destination": {"host": HOST, "subset": "stable"}, "weight": 100 - w},
                    {"destination": {"host": HOST, "subset": "canary"}, "weight": w},
                ],
            },
        ]
    if provider == "gatewayAPI":
        everything = [{"path": {"type": "PathPrefix", "value": "/"}}]
        header = [
            {**everything[0], "headers": [{"name": "x-canary", "type": "Exact", "value": "true"}]}
        ]
        return [
            # Gateway API defaults a lone backendRef's weight to 1 (all of the rule's traffic).
            (header, [(f"{HOST}-canary", 80, 1)]),
            (everything, [(f"{HOST}-stable", 80, 100 - w), (f"{HOST}-canary", 80, w)]),
        ]
    if provider == "router":
        if w in (0, 100):
            return "canary" if w == 100 else "stable"
        return [f"{w}%", "canary;", "*", "stable;"]
    return [("stable", 100 - w), ("canary", w)]


def _mirror(release: Release, provider: str) -> Any:
    if provider == "istio":
        (route,) = release.get("virtualservice", HOST)["spec"]["http"]
        return route["route"], route["mirror"], route["mirrorPercentage"]
    if provider == "gatewayAPI":
        (rule,) = release.get("httproute", HOST)["spec"]["rules"]
        (mirror,) = rule["filters"]
        return _backends(rule), mirror["type"], mirror["requestMirror"]
    conf = release.get("configmap", f"{HOST}-router")["data"]["nginx.conf"]
    split = re.search(
        r"split_clients \"\$\{request_id\}\" \$nepse_mirror_sampled \{([^}]*)\}", conf
    )
    fixed = re.search(r"map \$nepse_request_id \$nepse_mirror_sampled \{\s*default (\d);", conf)
    return split.group(1).split() if split else fixed.group(1)


def _expected_mirror(provider: str, p: float) -> Any:
    if provider == "istio":
        return (
            [{"destination": {"host": HOST, "subset": "stable"}, "weight": 100}],
            {"host": HOST, "subset": "shadow"},
            {"value": p},
        )
    if provider == "gatewayAPI":
        mirror: dict[str, Any] = {
            "backendRef": {"group": "", "kind": "Service", "name": f"{HOST}-shadow", "port": 80}
        }
        if p != 100:
            if p == int(p):
                mirror["percent"] = int(p)
            else:
                mirror["fraction"] = {"numerator": round(p * 100), "denominator": 10000}
        return [(f"{HOST}-stable", 80, 1)], "RequestMirror", mirror
    if p in (0, 100):
        return "1" if p == 100 else "0"
    return [f"{p:g}%", "1;", "*", "0;"]


@pytest.mark.parametrize("provider", ["istio", "gatewayAPI", "router", "knative"])
def test_canary_weight_steps_appear_exactly_in_the_stored_routing(
    release: Release, tmp_path: Path, provider: str
) -> None:
    values = _values(tmp_path, provider, "canary")
    first, *rest = CANARY_STEPS
    release.install(*value_args(values), "--set", f"rollout.canary.weight={first}")
    assert _canary_split(release, provider) == _expected_canary_split(provider, first)
    for weight in rest:
        release.upgrade(*value_args(values), "--set", f"rollout.canary.weight={weight}")
        assert _canary_split(release, provider) == _expected_canary_split(provider, weight), (
            f"after setting rollout.canary.weight={weight}"
        )


@pytest.mark.parametrize("provider", ["istio", "gatewayAPI", "router"])
def test_shadow_mirror_steps_appear_exactly_in_the_stored_routing(
    release: Release, tmp_path: Path, provider: str
) -> None:
    values = _values(tmp_path, provider, "shadow")
    first, *rest = SHADOW_STEPS
    release.install(*value_args(values), "--set-json", f"rollout.shadow.percent={first}")
    assert _mirror(release, provider) == _expected_mirror(provider, first)
    for percent in rest:
        release.upgrade(*value_args(values), "--set-json", f"rollout.shadow.percent={percent}")
        assert _mirror(release, provider) == _expected_mirror(provider, percent), (
            f"after setting rollout.shadow.percent={percent}"
        )
