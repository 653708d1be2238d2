"""The Argo CD manifests under argocd/ pass a server-side dry-run on the local API server with
Argo CD's CRDs installed (the CRDs' structural schemas, admission and field validation all
run; nothing is stored), and broken copies of them are rejected with the field named.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_cluster import ROOT, Cluster, missing_from

pytestmark = pytest.mark.slow

ARGOCD = ROOT / "argocd"
MANIFESTS = tuple(sorted(ARGOCD.rglob("*.yaml")))
# Argo CD's own finalizer predates the API server's advice on finalizer names; the server warns
# about it and accepts it. Any other warning (a deprecated field, say) fails the test.
FINALIZER_WARNING = (
    'Warning: metadata.finalizers: "resources-finalizer.argocd.argoproj.io": prefer a '
    "domain-qualified finalizer name including a path (/) to avoid accidental conflicts with "
    "other finalizer writers"
)


@pytest.fixture(scope="module")
def argocd_namespace(cluster: Cluster) -> Iterator[str]:
    """The argocd namespace the manifests name; removed afterwards if this module made it."""
    made = cluster.kubectl("get", "namespace", "argocd", check=False).returncode != 0
    if made:
        cluster.kubectl("create", "namespace", "argocd")
    yield "argocd"
    if made:
        cluster.kubectl("delete", "namespace", "argocd", "--wait=false", check=False)


def _dry_run(cluster: Cluster, docs: list[dict[str, Any]], *, check: bool = True) -> Any:
    return cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=argocd-e2e",
        "-o",
        "json",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=check,
    )


def _objects(result_stdout: str) -> list[dict[str, Any]]:
    out = yaml.safe_load(result_stdout)
    return out["items"] if out.get("kind") == "List" else [out]


def _argocd_objects(cluster: Cluster) -> list[str]:
    kinds = "applications.argoproj.io,applicationsets.argoproj.io,appprojects.argoproj.io"
    return cluster.kubectl("-n", "argocd", "get", kinds, "-o", "name").stdout.split()


@pytest.mark.parametrize("path", MANIFESTS, ids=[str(p.relative_to(ARGOCD)) for p in MANIFESTS])
def test_argocd_manifest_passes_a_server_side_dry_run(
    cluster: Cluster, argocd_namespace: str, path: Path
) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    result = _dry_run(cluster, docs)
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert set(warnings) <= {FINALIZER_WARNING}, result.stderr

    returned = _objects(result.stdout)
    assert [(o["kind"], o["metadata"]["name"]) for o in returned] == [
        (d["kind"], d["metadata"]["name"]) for d in docs
    ]
    for doc, obj in zip(docs, returned, strict=True):
        assert obj["metadata"]["namespace"] == argocd_namespace
        # The server keeps every field as written: nothing was pruned or changed.
        assert missing_from(doc["spec"], obj["spec"]) == []
    assert _argocd_objects(cluster) == [], "a dry-run stored something"


def _load(relative: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ARGOCD / relative).read_text()) if d]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, leaf = path.split(".")

    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value

    return mutate


_DELETE = object()
BROKEN = {
    "applicationset-unknown-spec-field": (
        "apps/applicationset.yaml",
        _set("spec.goTemplateOption", ["missingkey=error"]),
        ".spec.goTemplateOption: field not declared in schema",
    ),
    "applicationset-goTemplate-not-a-boolean": (
        "apps/applicationset.yaml",
        _set("spec.goTemplate", "true"),
        ".spec.goTemplate: expected boolean",
    ),
    "applicationset-valueFiles-not-a-list": (
        "apps/applicationset.yaml",
        _set(
            "spec.template.spec.sources.0.helm.valueFiles", "$values/environments/dev/values.yaml"
        ),
        ".spec.template.spec.sources[0].helm.valueFiles: expected list",
    ),
    "applicationset-without-generators": (
        "apps/applicationset.yaml",
        _set("spec.generators", _DELETE),
        "spec.generators: Required value",
    ),
    "appproject-unknown-destination-field": (
        "apps/project.yaml",
        _set("spec.destinations.0.namespaces", ["nepse-dev"]),
        ".spec.destinations[0].namespaces: field not declared in schema",
    ),
    "application-without-project": (
        "bootstrap/root-app.yaml",
        _set("spec.project", _DELETE),
        "spec.project: Required value",
    ),
}


@pytest.mark.parametrize(("relative", "mutate", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_argocd_manifest_is_rejected_naming_the_field(
    cluster: Cluster,
    argocd_namespace: str,
    relative: str,
    mutate: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    docs = _load(relative)
    broken = copy.deepcopy(docs)
    mutate(broken[0])
    result = _dry_run(cluster, broken, check=False)
    assert result.returncode != 0, f"the API server accepted the broken copy:\n{result.stdout}"
    assert message in result.stderr
    # The same manifest, unbroken, passes: the rejection is about the change alone.
    _dry_run(cluster, docs)
