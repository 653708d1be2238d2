"""Releases through git with a real Argo CD: every change is a push to the repository Argo CD
syncs, and each scenario prints one line::

    ARGOCD scenario=<name> seconds=<s> ok=<true|false> [details]

seconds counted from the push (or the apply) to the state being reached in the cluster. Each
push is followed by a refresh request (what a git webhook does), except in
``promote-polling``. Scenarios run in this order on the same environments; each leaves them
as it found them, by a `git revert` pushed like any other change, except the last on each
environment (``prune`` on prod, ``promote-polling`` on dev), which leave v2 there.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import urllib3
from argocd_kit import (
    APP_RESYNC_SECONDS,
    NAMESPACE,
    REVISION_CACHE,
    ArgoCD,
    Workspace,
    all_available,
    app_name,
    pod_template,
    synced_at,
    wait_seconds,
)

from nepse_gitops.environments import namespace_for
from testkit.requestloop import FEATURES, RequestLoop
from testkit.scenario import version_is

BOOTSTRAP_GOAL = 90.0
REVERT_GOAL = 30.0
GATE_ROLLBACK_GOAL = 60.0


def _line(name: str, seconds: float, ok: bool, **details: object) -> str:
    extra = "".join(f" {k}={v}" for k, v in details.items())
    return f"ARGOCD scenario={name} seconds={seconds:.1f} ok={str(ok).lower()}{extra}"


def _runs(deployment: dict[str, Any], tag: str, version: str) -> bool:
    template = deployment["spec"]["template"]
    annotations = template["metadata"].get("annotations", {})
    return (
        template["spec"]["containers"][0]["image"].endswith(f":{tag}")
        and annotations.get("nepse-predictor/model-version") == version
    )


def _settled(argocd: ArgoCD, env: str, sha: str, check: Any = None) -> Any:
    """A predicate: the environment's Application synced to ``sha`` and healthy, its
    Deployments available, and ``check(deployments)`` true."""

    def done() -> bool:
        if not synced_at(argocd.application(app_name(env)), sha):
            return False
        deployments = argocd.deployments(env)
        return all_available(deployments) and (check is None or check(deployments))

    return done


def _push(ws: Workspace, argocd: ArgoCD, env: str, *, refresh: bool = True) -> tuple[str, float]:
    sha = ws.head()
    pushed = ws.push()
    if refresh:
        argocd.refresh(app_name(env))
    return sha, pushed


def test_bootstrap(bootstrapped: dict[str, float], report) -> None:
    seconds = bootstrapped["available"]
    ok = seconds <= BOOTSTRAP_GOAL
    report(
        _line(
            "bootstrap", seconds, ok,
            generated=f"{bootstrapped['generated']:.1f}", synced=f"{bootstrapped['synced']:.1f}",
        )
    )  # fmt: skip
    assert ok, f"bootstrap took {seconds:.1f}s (goal {BOOTSTRAP_GOAL:.0f}s)"


def test_hpa_owned_replicas_stay_synced(argocd: ArgoCD, bootstrapped) -> None:
    """prod's HPA scales the stable Deployment (the chart leaves replicas to it): Synced."""
    hpa = argocd.cluster.kubectl_json(
        "-n", namespace_for("prod"), "get", "hpa", "nepse-predictor-stable"
    )
    wanted = hpa["spec"]["minReplicas"]
    wait_seconds(
        f"the HPA to scale prod's stable Deployment to {wanted}",
        lambda: argocd.deployments("prod")["nepse-predictor-stable"]["spec"]["replicas"] == wanted,
        time.monotonic(),
        timeout=60,
    )
    app = argocd.application(app_name("prod"))
    assert app["status"]["sync"]["status"] == "Synced", app["status"].get("resources")


def test_promote_then_revert(
    argocd: ArgoCD, workspace: Workspace, versions: dict[str, str], bootstrapped, report
) -> None:
    before = pod_template(argocd.deployments("dev")["nepse-predictor-stable"])
    workspace.gitops(
        "promote", "--to", "dev", "--image-tag", "node-b", "--model-version", "v2",
        "--model-sha256", versions["v2"], "--no-branch",
    )  # fmt: skip
    sha, pushed = _push(workspace, argocd, "dev")
    seconds = wait_seconds(
        "dev to run node-b with model v2",
        _settled(argocd, "dev", sha, lambda d: _runs(d["nepse-predictor-stable"], "node-b", "v2")),
        pushed,
        timeout=180,
    )
    report(_line("promote", seconds, True, env="dev"))

    service = argocd.cluster.kubectl_json(
        "-n", namespace_for("dev"), "get", "service", "nepse-predictor"
    )
    host, port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
    with RequestLoop(host, port, workers=2, rate=40) as loop:
        loop.wait_for("answers from v2", lambda a: any(x.version == "v2" for x in a), 30)
        workspace.git("revert", "--no-edit", "HEAD")
        sha, pushed = _push(workspace, argocd, "dev")
        seconds = wait_seconds(
            "dev's pod template to be the one before the promotion",
            _settled(
                argocd, "dev", sha, lambda d: pod_template(d["nepse-predictor-stable"]) == before
            ),
            pushed,
            timeout=180,
        )
        loop.wait_for("only v1 answers", lambda a: all(x.version == "v1" for x in a), 60)
    answers = loop.result.settled_after(pushed, version_is("v1"))
    ok = seconds <= REVERT_GOAL
    failed = len(loop.result.failures)
    report(
        _line(
            "revert", seconds, ok, env="dev", answers_v1_seconds=f"{answers:.1f}",
            requests=loop.result.requests, failed=failed,
        )
    )  # fmt: skip
    assert ok, f"the revert took {seconds:.1f}s (goal {REVERT_GOAL:.0f}s)"
    assert failed == 0, dict(loop.result.failure_reasons())


SELF_HEAL_EDITS = {
    "replicas": ("scale", "deployment/nepse-predictor-stable", "--replicas=3"),
    "image": (
        "set", "image", "deployment/nepse-predictor-stable",
        "predictor=localhost/nepse-predictor:node-b",
    ),
    "selector": (
        "patch", "service", "nepse-predictor", "--type=merge",
        "-p", json.dumps({"spec": {"selector": {"nepse-predictor/track": "canary"}}}),
    ),
}  # fmt: skip


@pytest.mark.parametrize("edit", list(SELF_HEAL_EDITS))
def test_selfheal(argocd: ArgoCD, workspace: Workspace, bootstrapped, edit: str, report) -> None:
    ns = namespace_for("dev")
    kinds = {"replicas": "deployment", "image": "deployment", "selector": "service"}
    names = {"deployment": "nepse-predictor-stable", "service": "nepse-predictor"}
    kind = kinds[edit]
    before = argocd.cluster.kubectl_json("-n", ns, "get", kind, names[kind])["spec"]
    started = time.monotonic()
    argocd.cluster.kubectl("-n", ns, *SELF_HEAL_EDITS[edit])

    def healed() -> bool:
        spec = argocd.cluster.kubectl_json("-n", ns, "get", kind, names[kind])["spec"]
        if kind == "deployment":
            return spec["replicas"] == before["replicas"] and spec["template"] == before["template"]
        return spec["selector"] == before["selector"]

    seconds = wait_seconds(f"Argo CD to undo the {edit} edit", healed, started, timeout=120)
    report(_line("selfheal", seconds, True, env="dev", edit=edit))
    wait_seconds(
        "dev Synced and available again",
        _settled(argocd, "dev", workspace.head()),
        started,
        timeout=120,
    )


def test_quarantine(
    argocd: ArgoCD, workspace: Workspace, versions: dict[str, str], bootstrapped, report
) -> None:
    """A hand-made commit (past nepse-gitops, which would refuse it) that deploys a version it
    also quarantines: the chart refuses to render, Argo CD shows why, dev keeps serving."""
    root = workspace.root
    quarantine = root / "environments/quarantine.yaml"
    quarantine.write_text(
        quarantine.read_text().replace("modelVersions: []", 'modelVersions: ["v2"]')
    )
    release = root / "environments/dev/release.yaml"
    text = release.read_text()
    release.write_text(
        text.replace('modelVersion: "v1"', 'modelVersion: "v2"').replace(
            versions["v1"], versions["v2"]
        )
    )
    workspace.commit_all("Deploy v2 to dev and quarantine it")
    sha, pushed = _push(workspace, argocd, "dev")

    def refused() -> str:
        app = argocd.application(app_name("dev"))
        for condition in app.get("status", {}).get("conditions", []):
            if condition["type"] == "ComparisonError" and "v2" in condition["message"]:
                return condition["message"]
        return ""

    seconds = wait_seconds("dev's Application to show the rendering error", refused, pushed, 120)
    message = refused()
    assert "quarantine" in message.lower(), message
    deployment = argocd.deployments("dev")["nepse-predictor-stable"]
    ok = _runs(deployment, "node-a", "v1") and all_available({"stable": deployment})
    report(_line("quarantine", seconds, ok, env="dev"))
    assert ok, "dev stopped running v1 after a refused commit"

    workspace.git("revert", "--no-edit", "HEAD")
    sha, pushed = _push(workspace, argocd, "dev")
    wait_seconds("dev Synced again", _settled(argocd, "dev", sha), pushed, timeout=120)


def _track_pods(argocd: ArgoCD, env: str, track: str) -> list[str]:
    """host:port of each ready pod of one track."""
    pods = argocd.cluster.kubectl_json(
        "-n", namespace_for(env), "get", "pods", "-l", f"nepse-predictor/track={track}"
    )["items"]
    addresses = []
    for pod in pods:
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions", [])
        )
        if ready and not pod["metadata"].get("deletionTimestamp"):
            port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
            addresses.append(f"{pod['status']['podIP']}:{port}")
    return addresses


def _send_predictions(address: str, requests: int) -> dict[int, int]:
    """Half single rows, half two-row batches; the count of each status."""
    pool = urllib3.PoolManager(retries=False, timeout=10)
    single = json.dumps({"features": FEATURES}).encode()
    batch = json.dumps({"instances": [FEATURES, FEATURES]}).encode()
    counts: dict[int, int] = {}
    for i in range(requests):
        response = pool.request(
            "POST", f"http://{address}/v1/predict", body=batch if i % 2 else single,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        counts[response.status] = counts.get(response.status, 0) + 1
    return counts


def _only_stable(tag: str, version: str) -> Any:
    return lambda d: (
        set(d) == {"nepse-predictor-stable"} and _runs(d["nepse-predictor-stable"], tag, version)
    )


def _canary_runs(tag: str, version: str) -> Any:
    return lambda d: (
        "nepse-predictor-canary" in d and _runs(d["nepse-predictor-canary"], tag, version)
    )


def _start_canary(
    argocd: ArgoCD, ws: Workspace, versions: dict[str, str], version: str, weight: int
) -> None:
    ws.gitops(
        "promote", "--to", "prod", "--image-tag", "node-b", "--model-version", version,
        "--model-sha256", versions[version], "--no-branch",
    )  # fmt: skip
    ws.gitops("set-weight", "--env", "prod", "--weight", str(weight))
    sha, pushed = _push(ws, argocd, "prod")
    wait_seconds(
        f"prod's canary running {version}",
        _settled(argocd, "prod", sha, _canary_runs("node-b", version)),
        pushed,
        timeout=180,
    )


def test_gate_rollback(
    argocd: ArgoCD, workspace: Workspace, versions: dict[str, str], bootstrapped, report
) -> None:
    """The gate judges a canary whose model fails every batch, from the pods' own /metrics,
    and commits the rollback; Argo CD puts prod back on v1 alone."""
    policy = workspace.root / "environments/prod/policy.yaml"
    policy.write_text(policy.read_text().replace("minRequests: 500", "minRequests: 100"))
    workspace.commit_all("Gate prod after 100 requests")
    _start_canary(argocd, workspace, versions, "v3", weight=25)

    urls: list[str] = []
    for track, flag in (("stable", "--stable-url"), ("canary", "--candidate-url")):
        for address in _track_pods(argocd, "prod", track):
            _send_predictions(address, 120)
            urls += [flag, f"http://{address}/metrics"]
    gate = workspace.gitops("gate", "--env", "prod", *urls, "--push", check=False)
    verdict = time.monotonic()
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "[FAIL] error ratio" in gate.stdout, gate.stdout
    argocd.refresh(app_name("prod"))
    sha = workspace.head()
    assert "gate failed for" in workspace.git("log", "-1", "--format=%B")
    seconds = wait_seconds(
        "prod back on v1 alone",
        _settled(argocd, "prod", sha, _only_stable("node-a", "v1")),
        verdict,
        timeout=180,
    )
    ok = seconds <= GATE_ROLLBACK_GOAL
    report(_line("gate-rollback", seconds, ok, env="prod"))
    assert ok, (
        f"the rollback took {seconds:.1f}s after the verdict (goal {GATE_ROLLBACK_GOAL:.0f}s)"
    )


# What Kubernetes itself adds to every namespace, never part of a release.
NAMESPACE_DEFAULTS = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}
RELEASE_KINDS = (
    "deployments", "services", "horizontalpodautoscalers", "poddisruptionbudgets",
    "configmaps", "serviceaccounts", "networkpolicies", "virtualservices",
    "destinationrules", "servicemonitors", "prometheusrules",
)  # fmt: skip


def _unmanaged(argocd: ArgoCD, env: str) -> set[tuple[str, str]]:
    app = argocd.application(app_name(env))
    managed = {(r["kind"], r["name"]) for r in app["status"].get("resources", [])}
    live = argocd.cluster.kubectl_json("-n", namespace_for(env), "get", ",".join(RELEASE_KINDS))
    found = {(item["kind"], item["metadata"]["name"]) for item in live["items"]}
    return found - managed - NAMESPACE_DEFAULTS


def test_prune(
    argocd: ArgoCD, workspace: Workspace, versions: dict[str, str], bootstrapped, report
) -> None:
    """`finish` on a healthy canary: v2 becomes stable, the canary's workload and its
    Services go, nothing is left that the Application does not own. (The last scenario on
    prod: it stays on v2.)"""
    _start_canary(argocd, workspace, versions, "v2", weight=50)
    canary_objects = {
        (item["kind"], item["metadata"]["name"])
        for item in argocd.cluster.kubectl_json(
            "-n", namespace_for("prod"), "get", ",".join(RELEASE_KINDS)
        )["items"]
        if "canary" in item["metadata"]["name"]
    }
    assert ("Deployment", "nepse-predictor-canary") in canary_objects
    workspace.gitops("finish", "--env", "prod")
    sha, pushed = _push(workspace, argocd, "prod")

    def pruned() -> bool:
        if not _settled(argocd, "prod", sha, _only_stable("node-b", "v2"))():
            return False
        live = argocd.cluster.kubectl_json(
            "-n", namespace_for("prod"), "get", ",".join(RELEASE_KINDS)
        )["items"]
        return not any("canary" in item["metadata"]["name"] for item in live)

    seconds = wait_seconds("the canary's objects pruned", pruned, pushed, timeout=180)
    unmanaged = _unmanaged(argocd, "prod")
    conditions = argocd.application(app_name("prod"))["status"].get("conditions", [])
    orphaned = [c for c in conditions if c["type"] == "OrphanedResourceWarning"]
    ok = not unmanaged and not orphaned
    report(_line("prune", seconds, ok, env="prod", removed=len(canary_objects)))
    assert ok, f"left behind: {sorted(unmanaged)} {orphaned}"


def test_emergency_rollback_with_automated_sync_off(
    argocd: ArgoCD, workspace: Workspace, versions: dict[str, str], bootstrapped, report
) -> None:
    """`argocd app rollback` needs automated sync off; the cluster goes back while git still
    names the new version (OutOfSync) until the promotion is reverted in git too."""
    app = app_name("dev")
    workspace.gitops(
        "promote", "--to", "dev", "--image-tag", "node-b", "--model-version", "v2",
        "--model-sha256", versions["v2"], "--no-branch",
    )  # fmt: skip
    sha, pushed = _push(workspace, argocd, "dev")
    stable = "nepse-predictor-stable"
    wait_seconds(
        "dev on v2",
        _settled(argocd, "dev", sha, lambda d: _runs(d[stable], "node-b", "v2")),
        pushed,
        timeout=180,
    )
    refused = argocd.cli("app", "rollback", app, check=False)
    assert refused.returncode != 0
    assert "auto-sync" in (refused.stderr + refused.stdout).lower(), refused.stderr

    # The CLI wants a source position for a multi-source Application, even for a setting of
    # the whole Application.
    argocd.cli("app", "set", app, "--sync-policy", "none", "--source-position", "1")
    history = argocd.application(app)["status"]["history"]
    # The last deployment is the promotion; the one before it ran v1 (an Application synced
    # to a commit that changes none of its manifests adds no entry).
    assert sha in (history[-1].get("revisions") or []), history[-1]
    previous = history[-2]
    started = time.monotonic()
    argocd.cli("app", "rollback", app, str(previous["id"]))
    seconds = wait_seconds(
        "dev back on v1 by the rollback",
        lambda: all_available(d := argocd.deployments("dev")) and _runs(d[stable], "node-a", "v1"),
        started,
        timeout=180,
    )
    status = argocd.application(app)
    still_off = "automated" not in status["spec"].get("syncPolicy", {})
    out_of_sync = status["status"]["sync"]["status"] == "OutOfSync"
    ok = still_off and out_of_sync
    report(_line("emergency-rollback", seconds, ok, env="dev", git_says="v2"))
    assert still_off, "the ApplicationSet turned automated sync back on"
    assert out_of_sync, "after the rollback git still names v2: the Application must be OutOfSync"

    workspace.git("revert", "--no-edit", "HEAD")
    sha, _ = _push(workspace, argocd, "dev", refresh=False)
    argocd.cli(
        "app", "set", app, "--sync-policy", "automated", "--self-heal", "--auto-prune",
        "--source-position", "1",
    )  # fmt: skip
    argocd.refresh(app)
    wait_seconds(
        "dev Synced to the revert with automated sync back on",
        _settled(argocd, "dev", sha, lambda d: _runs(d[stable], "node-a", "v1")),
        time.monotonic(),
        timeout=120,
    )


FORBIDDEN = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: nepse-forbidden
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: nepse-forbidden
rules: []
"""


def test_the_project_refuses_kinds_it_does_not_allow(
    argocd: ArgoCD, workspace: Workspace, bootstrapped
) -> None:
    (workspace.root / "forbidden").mkdir()
    (workspace.root / "forbidden/rbac.yaml").write_text(FORBIDDEN)
    workspace.commit_all("Try to deploy RBAC through the nepse-predictor project")
    workspace.push()
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "nepse-forbidden", "namespace": NAMESPACE},
        "spec": {
            "project": "nepse-predictor",
            "source": {"repoURL": argocd.git_url, "targetRevision": "main", "path": "forbidden"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "nepse-dev"},
            "syncPolicy": {"automated": {}},
        },
    }
    argocd.cluster.apply(json.dumps(application))
    try:

        def refusals() -> list[str]:
            status = argocd.application("nepse-forbidden").get("status", {})
            texts = [c["message"] for c in status.get("conditions", [])]
            texts += [r.get("message", "") for r in status.get("resources", [])]
            texts.append(status.get("operationState", {}).get("message", ""))
            return [t for t in texts if "not permitted in project" in t]

        messages = " ".join((wait_seconds and []) or [])
        wait_seconds("the project to refuse the RBAC kinds", refusals, time.monotonic(), 60)
        messages = " ".join(refusals())
        assert "ClusterRole" in messages and "Role" in messages, messages
        for kind in ("clusterrole", "role"):
            found = argocd.cluster.kubectl(
                "-n", "nepse-dev", "get", kind, "nepse-forbidden", check=False
            )
            assert found.returncode != 0, f"a {kind} was created"
    finally:
        argocd.cluster.kubectl("-n", NAMESPACE, "delete", "application", "nepse-forbidden")
        workspace.git("revert", "--no-edit", "HEAD")
        workspace.push()


def test_promote_by_polling_alone(
    argocd: ArgoCD, workspace: Workspace, versions: dict[str, str], bootstrapped, report
) -> None:
    """The last scenario: it leaves dev on v2."""
    workspace.gitops(
        "promote", "--to", "dev", "--image-tag", "node-b", "--model-version", "v2",
        "--model-sha256", versions["v2"], "--no-branch",
    )  # fmt: skip
    sha, pushed = _push(workspace, argocd, "dev", refresh=False)
    seconds = wait_seconds(
        "dev to run v2 without a refresh",
        _settled(argocd, "dev", sha, lambda d: _runs(d["nepse-predictor-stable"], "node-b", "v2")),
        pushed,
        timeout=APP_RESYNC_SECONDS * 4 + 120,
    )
    report(
        _line(
            "promote-polling", seconds, True, env="dev", app_resync=APP_RESYNC_SECONDS,
            revision_cache=REVISION_CACHE,
        )
    )  # fmt: skip
