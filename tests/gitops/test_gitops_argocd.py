"""argocd/: the ApplicationSet's generated Applications, rendered as Argo CD's repo server would.

The git directory generator is emulated over the committed tree of a temporary repository;
its template and templatePatch are rendered by tests/gitops/appsetrender (Go text/template with
Sprig, as the ApplicationSet controller does); each Application's sources are then rendered
with helm the way the repo server does for a multi-source Application: the chart source's path,
`helm.releaseName`, the destination namespace, and `$values/...` value files resolved in the
`ref: values` source's checkout.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from ruamel.yaml import YAML

from nepse_gitops.environments import Environment, list_environments
from nepse_gitops.render import (
    CLUSTER_SCOPED,
    helm_template_args,
    render_env,
    run_helm,
)
from testkit.cluster import TOOLS
from testkit.net import REPO_ROOT

HERE = Path(__file__).parent
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


@pytest.fixture(scope="session")
def appsetrender(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        pytest.fail("go is needed to build tests/gitops/appsetrender (Argo CD's templating)")
    out = tmp_path_factory.mktemp("appsetrender") / "appsetrender"
    proc = subprocess.run(
        [go, "build", "-o", str(out), "."],
        cwd=HERE / "appsetrender",
        capture_output=True,
        text=True,
        env={**os.environ, "CGO_ENABLED": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    return out


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` never cross a `/`."""
    regex = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            regex += "[^/]*"
        elif c == "?":
            regex += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        else:
            regex += re.escape(c)
        i += 1
    return re.fullmatch(regex, name) is not None


def directory_params(repo: Path, generator: dict) -> list[dict]:
    """The git directory generator's parameters (goTemplate form) for the committed tree."""
    tree = git(repo, "ls-tree", "-d", "-r", "--name-only", "HEAD").splitlines()
    dirs = [d for d in tree if not any(part.startswith(".") for part in d.split("/"))]
    rules = generator["git"]["directories"]
    params = []
    for d in sorted(dirs):
        include = any(go_path_match(r["path"], d) and not r.get("exclude") for r in rules)
        exclude = any(go_path_match(r["path"], d) and r.get("exclude") for r in rules)
        if include and not exclude:
            base = d.split("/")[-1]
            normalized = re.sub(r"[^-a-z0-9.]", "-", base.lower()).strip("-.")
            params.append(
                {
                    "path": {
                        "path": d,
                        "basename": base,
                        "basenameNormalized": normalized,
                        "segments": d.split("/"),
                    }
                }
            )
    return params


def strategic_merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch on Application fields: maps merge, lists of scalars replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = strategic_merge(base.get(key), value) if key in base else value
        return out
    return copy.deepcopy(patch)


def generate(repo: Path, appsetrender: Path) -> list[dict]:
    appset = load(repo / "argocd/apps/applicationset.yaml")
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    assert spec["goTemplateOptions"] == ["missingkey=error"]
    (generator,) = spec["generators"]
    request = {
        "goTemplateOptions": spec["goTemplateOptions"],
        "template": spec["template"],
        "templatePatch": spec.get("templatePatch", ""),
        "params": directory_params(repo, generator),
    }
    proc = subprocess.run(
        [str(appsetrender)], input=json.dumps(request), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    apps = []
    for item in json.loads(proc.stdout):
        app = item["application"]
        if item["patch"].strip():
            patch = YAML(typ="safe", pure=True).load(item["patch"])
            project = app["spec"]["project"]
            app = strategic_merge(app, patch)
            app["spec"]["project"] = project  # the controller ignores a patched project
        apps.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                **app,
                "metadata": {**app["metadata"], "namespace": appset["metadata"]["namespace"]},
            }
        )
    return apps


def repo_server_render(repo: Path, app: dict, helm: str) -> str:
    """helm template for one Application, as the repo server runs it (all sources in `repo`)."""
    sources = app["spec"]["sources"]
    refs = {s["ref"]: repo for s in sources if "ref" in s}
    (chart,) = [s for s in sources if "path" in s]
    value_files = []
    for vf in chart["helm"]["valueFiles"]:
        if vf.startswith("$"):
            ref, rel = vf[1:].split("/", 1)
            value_files.append(refs[ref] / rel)
        else:
            value_files.append(repo / chart["path"] / vf)
    for path in value_files:
        assert path.is_file(), f"{app['metadata']['name']}: value file {path} does not exist"
    args = helm_template_args(
        helm,
        repo / chart["path"],
        app["spec"]["destination"]["namespace"],
        value_files,
        release=chart["helm"]["releaseName"],
    )
    return run_helm(args, app["metadata"]["name"])


@pytest.fixture
def apps(repo: Path, appsetrender: Path) -> list[dict]:
    return generate(repo, appsetrender)


def test_one_application_per_environment_folder(repo: Path, apps: list[dict]) -> None:
    assert [a["metadata"]["name"] for a in apps] == [
        "nepse-predictor-dev",
        "nepse-predictor-prod",
        "nepse-predictor-staging",
    ]
    for app in apps:
        env = app["metadata"]["labels"]["nepse-predictor/environment"]
        assert app["metadata"]["finalizers"] == [FINALIZER]
        assert app["spec"]["project"] == "nepse-predictor"
        assert app["spec"]["destination"]["namespace"] == f"nepse-{env}"
        chart, values = app["spec"]["sources"]
        assert chart["helm"]["releaseName"] == "nepse-predictor"
        assert chart["helm"]["valueFiles"] == [
            f"$values/environments/{env}/values.yaml",
            f"$values/environments/{env}/release.yaml",
            "$values/environments/quarantine.yaml",
        ]
        assert values == {"repoURL": chart["repoURL"], "targetRevision": "main", "ref": "values"}
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert app["spec"]["ignoreDifferences"] == [
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
        ]


def test_prod_alone_prunes_last_and_labels_its_namespace_for_istio(apps: list[dict]) -> None:
    by_name = {a["metadata"]["name"]: a["spec"]["syncPolicy"] for a in apps}
    common = ["CreateNamespace=true", "ServerSideApply=true", "RespectIgnoreDifferences=true"]
    assert by_name["nepse-predictor-dev"]["syncOptions"] == common
    assert by_name["nepse-predictor-staging"]["syncOptions"] == common
    assert by_name["nepse-predictor-prod"]["syncOptions"] == [*common, "PruneLast=true"]
    assert by_name["nepse-predictor-prod"]["managedNamespaceMetadata"] == {
        "labels": {"istio-injection": "enabled"}
    }
    assert "managedNamespaceMetadata" not in by_name["nepse-predictor-dev"]


def test_each_application_renders_exactly_what_nepse_gitops_validates(
    repo: Path, apps: list[dict], helm: str
) -> None:
    for app in apps:
        env = app["metadata"]["labels"]["nepse-predictor/environment"]
        from_argo = repo_server_render(repo, app, helm)
        assert from_argo == render_env(Environment(repo, env), helm=helm).text


def test_a_new_environment_folder_becomes_an_application(
    repo: Path, appsetrender: Path, helm: str
) -> None:
    shutil.copytree(repo / "environments/dev", repo / "environments/qa")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "Add qa")
    apps = generate(repo, appsetrender)
    (qa,) = [a for a in apps if a["metadata"]["name"] == "nepse-predictor-qa"]
    assert qa["spec"]["destination"]["namespace"] == "nepse-qa"
    assert "nepse-predictor:" in repo_server_render(repo, qa, helm)
    # ... and the project has to be told about its namespace: that is checked below.
    project = load(repo / "argocd/apps/project.yaml")
    assert "nepse-qa" not in [d["namespace"] for d in project["spec"]["destinations"]]


def test_missing_template_parameters_fail_generation(repo: Path, appsetrender: Path) -> None:
    request = {
        "goTemplateOptions": ["missingkey=error"],
        "template": {"metadata": {"name": "{{ .path.basenme }}"}},
        "templatePatch": "",
        "params": [{"path": {"basename": "dev"}}],
    }
    proc = subprocess.run(
        [str(appsetrender)], input=json.dumps(request), capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert 'map has no entry for key "basenme"' in proc.stderr


def test_the_project_admits_every_application_and_every_rendered_kind(
    repo: Path, apps: list[dict], helm: str
) -> None:
    project = load(repo / "argocd/apps/project.yaml")["spec"]
    destinations = {(d["server"], d["namespace"]) for d in project["destinations"]}
    namespaced = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
    cluster = {(k["group"], k["kind"]) for k in project["clusterResourceWhitelist"]}
    assert cluster == {("", "Namespace")}
    for app in apps:
        dest = app["spec"]["destination"]
        assert (dest["server"], dest["namespace"]) in destinations
        for source in app["spec"]["sources"]:
            assert source["repoURL"] in project["sourceRepos"]
        docs = [
            d
            for d in YAML(typ="safe", pure=True).load_all(repo_server_render(repo, app, helm))
            if d
        ]
        for doc in docs:
            group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
            key = (group, doc["kind"])
            assert key not in CLUSTER_SCOPED, f"{app['metadata']['name']} renders {key}"
            assert key in namespaced, f"{app['metadata']['name']}: {key} is not whitelisted"


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
