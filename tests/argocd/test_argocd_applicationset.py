"""argocd/apps/ as the real ApplicationSet controller and repo-server read it: one Application
per environment folder, each deploying exactly what `nepse-gitops render` validates, a new
folder held back by the project, and a misspelt template parameter refused."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import yaml
from argocd_kit import (
    ENVIRONMENTS,
    NAMESPACE,
    ArgoCD,
    Workspace,
    app_name,
    wait_seconds,
)

from nepse_gitops.environments import namespace_for

TRACKING = "argocd.argoproj.io/tracking-id"


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _without_tracking(doc: dict[str, Any]) -> dict[str, Any]:
    annotations = doc["metadata"].get("annotations") or {}
    annotations.pop(TRACKING, None)
    if not annotations:
        doc["metadata"].pop("annotations", None)
    return doc


def _docs(text: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {_key(d): _without_tracking(d) for d in yaml.safe_load_all(text) if d}


def test_one_application_per_environment_folder(argocd: ArgoCD, bootstrapped) -> None:
    apps = argocd.applications()
    generated = {
        n
        for n, a in apps.items()
        if "nepse-predictor/environment" in a["metadata"].get("labels", {})
    }
    assert generated == {app_name(env) for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        spec = apps[app_name(env)]["spec"]
        assert spec["project"] == "nepse-predictor"
        assert spec["destination"]["namespace"] == namespace_for(env)
        (chart,) = [s for s in spec["sources"] if "path" in s]
        assert chart["helm"]["valueFiles"] == [
            f"$values/environments/{env}/values.yaml",
            f"$values/environments/{env}/release.yaml",
            f"$values/environments/{env}/policy.yaml",
            "$values/environments/quarantine.yaml",
        ]


def test_prod_alone_prunes_last_and_gets_an_istio_injected_namespace(
    argocd: ArgoCD, bootstrapped
) -> None:
    apps = argocd.applications()
    for env in ENVIRONMENTS:
        options = apps[app_name(env)]["spec"]["syncPolicy"]["syncOptions"]
        labels = argocd.cluster.kubectl_json("get", "namespace", namespace_for(env))["metadata"][
            "labels"
        ]
        assert ("PruneLast=true" in options) == (env == "prod"), options
        assert (labels.get("istio-injection") == "enabled") == (env == "prod"), labels


def test_each_application_deploys_what_nepse_gitops_validates(
    argocd: ArgoCD, workspace: Workspace, bootstrapped
) -> None:
    for env in ENVIRONMENTS:
        by_argocd = _docs(argocd.cli("app", "manifests", app_name(env)).stdout)
        rendered = workspace.gitops("render", "--env", env).stdout
        by_gitops = _docs(rendered)
        assert sorted(by_argocd) == sorted(by_gitops), env
        for key, doc in by_gitops.items():
            assert by_argocd[key] == doc, f"{env}: {key} differs"


def test_a_new_environment_folder_is_held_back_by_the_project(
    argocd: ArgoCD, workspace: Workspace, bootstrapped
) -> None:
    """The folder becomes an Application at once, but its namespace is not one of the
    project's destinations: nothing is deployed until the project admits it."""
    shutil.copytree(workspace.root / "environments/dev", workspace.root / "environments/qa")
    workspace.commit_all("Add a qa environment")
    workspace.push()
    argocd.cluster.kubectl(
        "-n", NAMESPACE, "annotate", "applicationset", "nepse-predictor",
        "argocd.argoproj.io/application-set-refresh=true", "--overwrite",
    )  # fmt: skip
    try:

        def refusal() -> str:
            app = argocd.applications().get(app_name("qa"), {})
            for condition in app.get("status", {}).get("conditions", []):
                message = condition["message"]
                if condition["type"] == "InvalidSpecError" and "nepse-qa" in message:
                    return message
            return ""

        wait_seconds(
            "the qa Application, refused by the project",
            refusal,
            time.monotonic(),
            timeout=120,
            describe=lambda: argocd.applications().get(app_name("qa"), {}).get("status"),
        )
        assert "allowed destinations in project 'nepse-predictor'" in refusal()
        absent = argocd.cluster.kubectl("get", "namespace", "nepse-qa", check=False)
        assert absent.returncode != 0, "namespace nepse-qa was created"
    finally:
        workspace.git("revert", "--no-edit", "HEAD")
        workspace.push()
        # applicationsSync: create-update keeps an Application whose folder went away.
        argocd.cluster.kubectl(
            "-n", NAMESPACE, "delete", "application", app_name("qa"), "--ignore-not-found"
        )


def test_a_misspelt_template_parameter_fails_generation(argocd: ArgoCD, bootstrapped) -> None:
    appset = argocd.cluster.kubectl_json(
        "-n", NAMESPACE, "get", "applicationset", "nepse-predictor"
    )
    misspelt = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "nepse-misspelt", "namespace": NAMESPACE},
        "spec": {
            **{k: appset["spec"][k] for k in ("goTemplate", "goTemplateOptions", "generators")},
            "template": json.loads(
                json.dumps(appset["spec"]["template"]).replace(
                    "nepse-predictor-{{ .path.basename }}", "misspelt-{{ .path.basenme }}"
                )
            ),
        },
    }
    argocd.cluster.apply(json.dumps(misspelt))
    try:

        def error() -> str:
            status = argocd.cluster.kubectl_json(
                "-n", NAMESPACE, "get", "applicationset", "nepse-misspelt"
            ).get("status", {})
            for condition in status.get("conditions", []):
                if condition["type"] == "ErrorOccurred" and condition["status"] == "True":
                    return condition["message"]
            return ""

        wait_seconds("the generation error", error, time.monotonic(), 60)
        assert "basenme" in error(), error()
        assert not [n for n in argocd.applications() if n.startswith("misspelt-")]
    finally:
        argocd.cluster.kubectl("-n", NAMESPACE, "delete", "applicationset", "nepse-misspelt")


def test_every_environment_is_applied_server_side(argocd: ArgoCD, bootstrapped) -> None:
    """ServerSideApply=true: the controller owns its fields as an Apply manager, so fields
    other managers own (the HPA's replicas) are left to them."""
    for env in ENVIRONMENTS:
        for name in argocd.deployments(env):
            deployment = argocd.cluster.kubectl_json(
                "-n", namespace_for(env), "get", "deployment", name, "--show-managed-fields"
            )
            managers = {
                (m["manager"], m["operation"]) for m in deployment["metadata"]["managedFields"]
            }
            assert ("argocd-controller", "Apply") in managers, f"{env}/{name}: {managers}"
