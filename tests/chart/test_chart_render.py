"""Properties every rendering of the chart keeps, checked on the real output of Helm 3 and 4 for
every ci/ values file (every strategy with every provider, and Knative)."""

from __future__ import annotations

import re
from functools import cache

import pytest
from chartkit import CHART, CI_VALUES, render

TRACK_LABEL = "nepse-predictor/track"
IDS = [p.name for p in CI_VALUES]


@cache
def rendered(helm: str, name: str) -> tuple[dict, ...]:
    path = next(p for p in CI_VALUES if p.name == name)
    return tuple(render(helm, [path]))


def of_kind(docs, kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs) -> list[tuple[str, dict, dict]]:
    """(workload name, pod template metadata, pod spec) of every workload."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "Rollout") or (
            d["kind"] == "Service" and d["apiVersion"].startswith("serving.knative.dev")
        ):
            template = d["spec"]["template"]
            out.append((d["metadata"]["name"], template["metadata"], template["spec"]))
    return out


@pytest.mark.parametrize("name", IDS)
def test_helm3_and_helm4_render_the_same_manifests(name: str) -> None:
    assert rendered("helm3", name) == rendered("helm4", name)


@pytest.mark.parametrize("name", IDS)
def test_every_container_runs_restricted_with_a_read_only_root(name: str) -> None:
    docs = rendered("helm4", name)
    assert pod_specs(docs), "no workload rendered"
    for workload, _, spec in pod_specs(docs):
        if "securityContext" in spec:
            assert spec["securityContext"]["runAsNonRoot"] is True, workload
            assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, (workload, c["name"])
            assert sc["allowPrivilegeEscalation"] is False, (workload, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (workload, c["name"])
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            tmp = mounts.get("/tmp")
            assert tmp, f"{workload}/{c['name']} has no writable /tmp"
            volume = next(v for v in spec["volumes"] if v["name"] == tmp)
            assert "emptyDir" in volume


@pytest.mark.parametrize("name", IDS)
def test_each_predictor_pod_is_told_its_track_and_model(name: str) -> None:
    docs = rendered("helm4", name)
    for workload, meta, spec in pod_specs(docs):
        if meta["labels"].get("app.kubernetes.io/component") != "predictor":
            continue
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        if TRACK_LABEL not in meta["labels"]:
            # A Rollout: one template for every role, which the controller sets as a label.
            (track_env,) = [e for e in spec["containers"][0]["env"] if e["name"] == "NEPSE_TRACK"]
            field = track_env["valueFrom"]["fieldRef"]["fieldPath"]
            assert field == f"metadata.labels['{TRACK_LABEL}']", workload
        else:
            track = meta["labels"][TRACK_LABEL]
            assert workload.endswith(track) or workload == "nepse-predictor"
            assert env["NEPSE_TRACK"] == track
        version = meta["annotations"]["nepse-predictor/model-version"]
        assert env["NEPSE_MODEL_DIR"].endswith("/" + version)


@pytest.mark.parametrize("name", IDS)
def test_replicas_are_left_out_exactly_when_an_hpa_scales_the_deployment(name: str) -> None:
    docs = rendered("helm4", name)
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    for d in of_kind(docs, "Deployment"):
        has_replicas = "replicas" in d["spec"]
        assert has_replicas != (d["metadata"]["name"] in scaled), d["metadata"]["name"]


@pytest.mark.parametrize("name", IDS)
def test_selectors_never_carry_the_chart_version(name: str) -> None:
    for d in rendered("helm4", name):
        spec = d.get("spec") or {}
        selector = spec.get("selector") or {}
        labels = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
        assert "helm.sh/chart" not in labels, d["metadata"]["name"]
        assert "app.kubernetes.io/version" not in labels, d["metadata"]["name"]


@pytest.mark.parametrize("name", IDS)
def test_every_service_selects_pods_that_the_chart_runs(name: str) -> None:
    docs = rendered("helm4", name)
    pods = [meta["labels"] for _, meta, _ in pod_specs(docs)]
    for svc in of_kind(docs, "Service"):
        if svc["apiVersion"] != "v1":
            continue
        sel = svc["spec"]["selector"]
        assert any(sel.items() <= labels.items() for labels in pods), svc["metadata"]["name"]


@pytest.mark.parametrize("name", IDS)
def test_traffic_rules_point_at_rendered_services(name: str) -> None:
    docs = rendered("helm4", name)
    services = {s["metadata"]["name"] for s in of_kind(docs, "Service") if s["apiVersion"] == "v1"}
    for route in of_kind(docs, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            refs = list(rule["backendRefs"])
            refs += [f["requestMirror"]["backendRef"] for f in rule.get("filters", [])]
            for ref in refs:
                assert ref["name"] in services
    for vs in of_kind(docs, "VirtualService"):
        subsets = {
            s["name"] for dr in of_kind(docs, "DestinationRule") for s in dr["spec"]["subsets"]
        }
        for http in vs["spec"]["http"]:
            dests = [r["destination"] for r in http["route"]] + (
                [http["mirror"]] if "mirror" in http else []
            )
            for dest in dests:
                assert dest["host"] in services
                assert dest["subset"] in subsets
    for cm in of_kind(docs, "ConfigMap"):
        for host in re.findall(r"server ([a-z0-9-]+)\.nepse-test\.svc", cm["data"]["nginx.conf"]):
            assert host in services


@pytest.mark.parametrize("name", IDS)
def test_names_fit_kubernetes_limits(name: str) -> None:
    for d in rendered("helm4", name):
        assert len(d["metadata"]["name"]) <= 63, d["metadata"]["name"]


def test_long_release_names_still_fit() -> None:
    docs = render("helm4", [CHART / "tests" / "values" / "release.yaml"], release="x" * 53)
    for d in docs:
        assert len(d["metadata"]["name"]) <= 63, d["metadata"]["name"]


def _knative_revision(**sets: str) -> str:
    values = {
        "platform": "knative",
        "slots.stable.imageTag": "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
        "slots.stable.modelVersion": "2026.11.24-e93b5a2",
        **sets,
    }
    (service,) = [d for d in render("helm4", [], values) if d["kind"] == "Service"]
    return service["spec"]["template"]["metadata"]["name"]


def test_knative_revisions_of_two_models_on_one_sha_tag_have_different_names() -> None:
    first = _knative_revision()
    second = _knative_revision(**{"slots.stable.modelVersion": "2026.11.25-f01c6b3"})
    assert first != second
    assert all(len(name) <= 63 for name in (first, second))


def test_a_knative_template_change_that_leaves_the_slot_alone_gets_a_new_revision_name() -> None:
    assert _knative_revision() != _knative_revision(**{"resources.requests.memory": "768Mi"})


def test_the_same_values_keep_the_knative_revision_name() -> None:
    assert _knative_revision() == _knative_revision()
