"""argocd/ read as files: what the project admits, how the bootstrap is ordered, and the
manifests' schemas. What the real ApplicationSet controller and repo-server make of them is
tested in tests/argocd/ (a real Argo CD)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from nepse_gitops.environments import list_environments
from nepse_gitops.render import helm_template_args, run_helm
from testkit.cluster import TOOLS
from testkit.paths import REPO_ROOT

FINALIZER = "resources-finalizer.argocd.argoproj.io"


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def _wave(doc: dict) -> int:
    return int(doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def test_the_project_is_synced_before_the_applicationset(repo: Path) -> None:
    """An ApplicationSet whose Applications name a missing project is retried only after
    three minutes: the bootstrap creates the project in an earlier wave."""
    project = load(repo / "argocd/apps/project.yaml")
    appset = load(repo / "argocd/apps/applicationset.yaml")
    assert _wave(project) < _wave(appset)


def test_only_the_fields_the_hpa_and_the_rollouts_controller_write_are_ignored(
    repo: Path,
) -> None:
    spec = load(repo / "argocd/apps/applicationset.yaml")["spec"]["template"]["spec"]
    hpa, rollouts = "kube-controller-manager", "rollouts-controller"
    ignored = [
        (d["group"], d["kind"], *d["managedFieldsManagers"]) for d in spec["ignoreDifferences"]
    ]
    assert all(
        set(d) == {"group", "kind", "managedFieldsManagers"} for d in spec["ignoreDifferences"]
    )
    assert ignored == [
        ("apps", "Deployment", hpa),
        ("argoproj.io", "Rollout", hpa),
        ("networking.istio.io", "VirtualService", rollouts),
        ("networking.istio.io", "DestinationRule", rollouts),
        ("gateway.networking.k8s.io", "HTTPRoute", rollouts),
        ("", "Service", rollouts),
    ]


def test_every_kind_the_chart_can_render_on_kubernetes_is_whitelisted(
    repo: Path, helm: str
) -> None:
    """All chart-testing value files for platform=kubernetes stay inside the project."""
    project = load(repo / "argocd/apps/project.yaml")["spec"]
    namespaced = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
    ci = sorted((REPO_ROOT / "charts/nepse-predictor/ci").glob("*-values.yaml"))
    assert ci, "the chart's ci/ value files are missing"
    seen = set()
    for values in ci:
        if (load(values) or {}).get("platform") == "knative":
            continue
        text = run_helm(
            helm_template_args(helm, repo / "charts/nepse-predictor", "nepse-ci", [values]),
            values.name,
        )
        for doc in YAML(typ="safe", pure=True).load_all(text):
            if doc:
                group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
                seen.add((group, doc["kind"]))
    assert seen - namespaced == set()


def test_every_environment_namespace_is_a_project_destination(repo: Path) -> None:
    project = load(repo / "argocd/apps/project.yaml")["spec"]
    allowed = {d["namespace"] for d in project["destinations"]}
    assert {f"nepse-{e}" for e in list_environments(repo)} <= allowed


def test_bootstrap_installs_only_the_apps_folder(repo: Path) -> None:
    root = load(repo / "argocd/bootstrap/root-app.yaml")
    project = load(repo / "argocd/bootstrap/project.yaml")
    assert root["spec"]["project"] == project["metadata"]["name"] != "default"
    assert root["spec"]["source"]["path"] == "argocd/apps"
    assert root["metadata"]["finalizers"] == [FINALIZER]
    kinds = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    in_apps = {("argoproj.io", load(p)["kind"]) for p in (repo / "argocd/apps").glob("*.yaml")}
    assert in_apps == kinds
    assert project["spec"]["clusterResourceWhitelist"] == []


def test_argocd_manifests_pass_kubeconform_against_the_argo_cd_crds() -> None:
    script = REPO_ROOT / "scripts/kubeconform.sh"
    schemas = TOOLS / "schemas/crds/argoproj.io"
    if not schemas.is_dir():
        pytest.fail("Argo CD CRD schemas are missing under .tools/schemas: run `make tools`")
    proc = subprocess.run(
        ["bash", str(script), str(REPO_ROOT / "argocd")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout
