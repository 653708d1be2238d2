"""Releases through git with a real Argo CD: every change is a push to the repository Argo CD
syncs, and each scenario prints one line::

    ARGOCD scenario=<name> seconds=<s> ok=<true|false> [details]

seconds counted from the push (or the apply) to the state being reached in the cluster. Each
push is followed by a refresh request (what a git webhook does), except in
``promote-polling``. Scenarios run in this order on the same environments; each leaves them
as it found them, by a `git revert` pushed like any other change.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from argocd_kit import (
    NAMESPACE,
    ArgoCD,
    Workspace,
    all_available,
    app_name,
    env_namespace,
    pod_template,
    synced_at,
    wait_seconds,
)
from conftest import APP_RESYNC_SECONDS

from testkit.requestloop import RequestLoop
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
        "-n", env_namespace("prod"), "get", "hpa", "nepse-predictor-stable"
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
        "-n", env_namespace("dev"), "get", "service", "nepse-predictor"
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


def test_promote_by_polling_alone(
    argocd: ArgoCD, workspace: Workspace, versions: dict[str, str], bootstrapped, report
) -> None:
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
    report(_line("promote-polling", seconds, True, env="dev", app_resync=APP_RESYNC_SECONDS))
    workspace.git("revert", "--no-edit", "HEAD")
    sha, pushed = _push(workspace, argocd, "dev")
    wait_seconds(
        "dev back on v1",
        _settled(argocd, "dev", sha, lambda d: _runs(d["nepse-predictor-stable"], "node-a", "v1")),
        pushed,
        timeout=180,
    )


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
    ns = env_namespace("dev")
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
    quarantine.write_text(quarantine.read_text().replace("modelVersions: []", 'modelVersions: ["v2"]'))
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
