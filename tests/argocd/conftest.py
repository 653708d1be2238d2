"""Fixtures for the Argo CD tier: a real Argo CD syncing this repository onto the real node.

The real node, the service image and the model store come from testkit/realnode.py.
``argocd`` runs scripts/argocd-up.sh against that cluster (or reuses one that is up:
``make argocd-up``; nothing is stopped then). ``workspace`` is a clone of the repository
Argo CD syncs from, made ready the way a user makes a copy of this project ready:
``nepse-gitops init`` points it at its own git URL, image and model store, and one commit
fits the environments onto one small node and pins the versions the tier built. ``bootstrapped``
applies argocd/bootstrap/ and waits until every environment is Synced, Healthy and available.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argocd_kit import (
    APP_RESYNC_SECONDS,
    ENVIRONMENTS,
    NAMESPACE,
    REVISION_CACHE,
    ArgoCD,
    Workspace,
    all_available,
    app_name,
    read_env_file,
    synced_at,
    wait_seconds,
)

from nepse_gitops.environments import YamlDoc
from nepse_predictor import artifacts
from testkit import realnode
from testkit.cluster import ROOT, TOOLS, Cluster, run_tool, tools_env
from testkit.model_variants import one_row_only_model
from testkit.pytest_output import report_line
from testkit.realnode import IMAGE, ModelStore, load_service_image

STATE = Path(os.environ.get("NEPSE_ARGOCD_DIR", TOOLS / "argocd"))
TAGS = ("node-a", "node-b")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "nepse-predictor tests",
    "GIT_AUTHOR_EMAIL": "tests@nepse-predictor.invalid",
    "GIT_COMMITTER_NAME": "nepse-predictor tests",
    "GIT_COMMITTER_EMAIL": "tests@nepse-predictor.invalid",
}


def pytest_configure(config: pytest.Config) -> None:
    realnode.register(config)


def _script(name: str, env: dict[str, str], timeout: float = 300):
    return run_tool([ROOT / "scripts" / name], env, check=False, timeout=timeout)


@pytest.fixture(scope="session")
def argocd(real_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[ArgoCD]:
    env = tools_env()
    env["NEPSE_ARGOCD_DIR"] = str(STATE)
    env_file = STATE / "env"
    if env_file.is_file():
        values = read_env_file(env_file)
        if values.get("KUBECONFIG") != str(real_cluster.kubeconfig):
            pytest.fail(
                f"an Argo CD is up on another cluster ({values.get('KUBECONFIG')}); "
                "stop it with make argocd-down",
                pytrace=False,
            )
        report_line(request.config, f"ARGOCD reusing the Argo CD of {env_file}")
        yield ArgoCD(real_cluster, values["ARGOCD_SERVER"], values["NEPSE_ARGOCD_GIT_URL"])
        return

    env["NEPSE_ARGOCD_KUBECONFIG"] = str(real_cluster.kubeconfig)
    env["NEPSE_ARGOCD_APP_RESYNC"] = str(APP_RESYNC_SECONDS)
    env["NEPSE_ARGOCD_REVISION_CACHE"] = REVISION_CACHE
    started = time.monotonic()
    up = _script("argocd-up.sh", env)
    if up.returncode != 0:
        pytest.fail(f"scripts/argocd-up.sh failed:\n{up.stderr[-4000:]}", pytrace=False)
    report_line(request.config, f"ARGOCD up seconds={time.monotonic() - started:.1f}")
    values = read_env_file(env_file)
    try:
        yield ArgoCD(real_cluster, values["ARGOCD_SERVER"], values["NEPSE_ARGOCD_GIT_URL"])
    finally:
        down = _script("argocd-down.sh", env, timeout=120)
        assert down.returncode == 0, down.stderr
        assert not STATE.exists(), f"scripts/argocd-down.sh left {STATE}"


@pytest.fixture(scope="session")
def node_images(real_cluster: Cluster) -> tuple[str, ...]:
    load_service_image(TAGS)
    return TAGS


@pytest.fixture(scope="session")
def versions(model_store: ModelStore, trained_model: Path, second_model: Path) -> dict[str, str]:
    """Model version -> manifest sha256: v1, v2, and v3 (fails every batch with HTTP 500),
    all served by the model store."""
    broken = one_row_only_model(second_model, trained_model.parent / "v3", version="v3")
    return {**model_store.sha256, "v3": artifacts.sha256_of(broken / artifacts.MANIFEST)}


def _fit_one_node(root: Path, router: tuple[str, str], sha_v1: str) -> None:
    """Small requests and replica counts, images never pulled, and every slot at node-a/v1."""
    for env in ENVIRONMENTS:
        values = YamlDoc.load(root / f"environments/{env}/values.yaml")
        values.set(("image", "pullPolicy"), "Never")
        values.set(("resources", "requests", "cpu"), "50m")
        values.set(("resources", "requests", "memory"), "128Mi")
        values.set(("resources", "limits", "memory"), "512Mi")
        if env == "staging":
            values.set(("replicaCount",), 1)
            values.set(("traffic", "router", "replicas"), 1)
            values.set(("traffic", "router", "image", "repository"), router[0])
            values.set(("traffic", "router", "image", "tag"), router[1])
            values.set(("traffic", "router", "image", "pullPolicy"), "Never")
        if env == "prod":
            values.set(("autoscaling", "minReplicas"), 2)
            values.set(("autoscaling", "maxReplicas"), 3)
        values.path.write_text(values.new_text())

        release = YamlDoc.load(root / f"environments/{env}/release.yaml")
        slots = {"dev": ["stable"], "staging": ["blue", "green"], "prod": ["stable"]}[env]
        for slot in slots:
            release.set(("slots", slot, "imageTag"), "node-a")
            release.set(("slots", slot, "modelVersion"), "v1")
            release.set(("slots", slot, "modelSha256"), sha_v1)
        release.path.write_text(release.new_text())


@pytest.fixture(scope="session")
def workspace(
    argocd: ArgoCD,
    node_images: tuple[str, ...],
    model_store: ModelStore,
    router_image: tuple[str, str],
    versions: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Workspace:
    root = tmp_path_factory.mktemp("argocd-workspace") / "repo"
    env = {**tools_env(argocd.cluster.kubeconfig), **GIT_IDENTITY}
    run_tool(["git", "clone", "--quiet", argocd.git_url, root], env)
    ws = Workspace(root, env)
    ws.gitops(
        "init", "--repo-url", argocd.git_url, "--image-repository", IMAGE,
        "--model-url-base", model_store.base_url,
    )  # fmt: skip
    _fit_one_node(root, router_image, versions["v1"])
    ws.commit_all("Run the environments on the local cluster's one node")
    ws.gitops("render", "--quiet")
    ws.push()
    return ws


@pytest.fixture(scope="session")
def bootstrapped(argocd: ArgoCD, workspace: Workspace) -> dict[str, float]:
    """argocd/bootstrap/ applied; the seconds until each stage was reached."""
    started = time.monotonic()
    argocd.cluster.kubectl("apply", "-n", NAMESPACE, "-f", workspace.root / "argocd/bootstrap")
    sha = workspace.head()
    names = [app_name(env) for env in ENVIRONMENTS]
    generated = wait_seconds(
        "the ApplicationSet to generate every environment's Application",
        lambda: set(names) <= set(argocd.applications()),
        started,
        timeout=240,
    )
    synced = wait_seconds(
        "every environment Synced and Healthy",
        lambda: all(synced_at(a, sha) for n, a in argocd.applications().items() if n in names),
        started,
        timeout=300,
    )
    available = wait_seconds(
        "every environment's Deployments available",
        lambda: all(all_available(argocd.deployments(env)) for env in ENVIRONMENTS),
        started,
        timeout=120,
    )
    return {"generated": generated, "synced": synced, "available": available}
