"""An environment released by Argo Rollouts under a real Argo CD, on the real node.

The environment `rollouts` (added to the workspace by this module, after every other Argo CD
scenario) sets rollout.engine=argoRollouts; the real rollouts controller runs on the host. A
canary of v3 (its model fails every batch) is promoted by a commit: Argo CD syncs it, the
controller sets the weight in the VirtualService while the Application stays Synced (the
ApplicationSet ignores the fields the controller owns), then its analysis, querying a real
Prometheus that scrapes the canary pod as the chart's ServiceMonitor says, aborts it.
`nepse-gitops advance` reads the aborted Rollout and pushes the rollback and quarantine
commits, and Argo CD takes the environment back to v1. Prints ARGOCD lines as the other
scenarios do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from argocd_kit import NAMESPACE, ArgoCD, Workspace, app_name, synced_at, wait_seconds
from test_argocd_scenarios import _line, _push, _send_predictions, _track_pods

from nepse_gitops.environments import Environment, namespace_for
from nepse_gitops.render import render_env
from testkit.cluster import BIN
from testkit.prometheus import Prometheus, service_monitor_job
from testkit.rollouts import RolloutsController, rollout, virtual_service_weights

ENV = "rollouts"
NAME = "nepse-predictor"
ABORT_GOAL = 60.0


@pytest.fixture(scope="module")
def controller(
    argocd: ArgoCD, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RolloutsController]:
    with RolloutsController(argocd.cluster, tmp_path_factory.mktemp("rollouts")) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path_factory.mktemp("rollouts-prometheus"))
    prom.start()
    yield prom
    prom.stop()


def _add_environment(ws: Workspace, versions: dict[str, str], prometheus: Prometheus) -> None:
    project = ws.root / "argocd/apps/project.yaml"
    last = "      namespace: nepse-prod\n"
    assert last in project.read_text()
    project.write_text(
        project.read_text().replace(
            last, f"{last}    - server: https://kubernetes.default.svc\n"
            f"      namespace: {namespace_for(ENV)}\n", 1,
        )
    )  # fmt: skip
    dev = ws.root / "environments/dev"
    folder = ws.root / "environments" / ENV
    folder.mkdir()
    values = yaml.safe_load((dev / "values.yaml").read_text())
    values["rollout"] = {
        "engine": "argoRollouts",
        "argoRollouts": {
            "canary": {
                "steps": [
                    {"setWeight": 50},
                    {"pause": {"duration": "20s"}},
                    {"analysis": {}},
                    {"setWeight": 100},
                ]
            },
            "analysis": {"interval": "5s", "count": 24},
        },
    }
    values["traffic"] = {"provider": "istio"}
    values["replicaCount"] = 1
    values["preStopSleepSeconds"] = 1
    values["metrics"] = {"serviceMonitor": {"enabled": True}}
    (folder / "values.yaml").write_text(
        "# Released by Argo Rollouts (the Argo CD tier's own environment).\n"
        + yaml.safe_dump(values, sort_keys=False)
    )
    stable = {"imageTag": "node-a", "modelVersion": "v1", "modelSha256": versions["v1"]}
    (folder / "release.yaml").write_text(
        "# What a promotion moves.\n" + yaml.safe_dump({"slots": {"stable": stable}})
    )
    policy = {
        "promotion": {"strategy": "canary"},
        "gate": {
            "minRequests": 20,
            "errorRatio": {"max": 0.05},
            "prometheus": {
                "url": prometheus.url,
                "selector": f'namespace="{namespace_for(ENV)}"',
                "window": "2m",
            },
        },
    }
    (folder / "policy.yaml").write_text("# How releases enter.\n" + yaml.safe_dump(policy))


def _rollout_on(argocd: ArgoCD, sha: str, healthy: bool = True) -> Any:
    def done() -> bool:
        app = argocd.applications().get(app_name(ENV))
        if app is None or not (synced_at(app, sha) if healthy else _synced(app, sha)):
            return False
        status = rollout(argocd.cluster, namespace_for(ENV), NAME).get("status") or {}
        return not healthy or status.get("phase") == "Healthy"

    return done


def _synced(app: dict[str, Any], sha: str) -> bool:
    """Synced to ``sha`` whatever the health (a Rollout mid-step is Progressing or Paused)."""
    sync = app.get("status", {}).get("sync", {})
    revisions = sync.get("revisions") or [sync.get("revision")]
    return sync.get("status") == "Synced" and sha in revisions


def test_an_aborted_canary_becomes_rollback_and_quarantine_commits(
    argocd: ArgoCD,
    workspace: Workspace,
    versions: dict[str, str],
    controller: RolloutsController,
    prometheus: Prometheus,
    bootstrapped,
    report,
) -> None:
    ws, ns = workspace, namespace_for(ENV)
    _add_environment(ws, versions, prometheus)
    ws.commit_all(f"Add the {ENV} environment, released by Argo Rollouts")
    ws.gitops("render", "--quiet", "--env", ENV)
    sha, pushed = ws.head(), ws.push()
    # The project gains the namespace through the bootstrap Application; the ApplicationSet
    # has no Application to refresh yet: as a webhook would, ask both to look now.
    argocd.refresh("nepse-predictor-bootstrap")
    argocd.cluster.kubectl(
        "-n", NAMESPACE, "annotate", "applicationset", NAME,
        "argocd.argoproj.io/application-set-refresh=true", "--overwrite",
    )  # fmt: skip
    wait_seconds(
        f"{ENV} generated, synced and its Rollout healthy", _rollout_on(argocd, sha), pushed,
        timeout=300,
    )  # fmt: skip

    ws.gitops(
        "promote", "--to", ENV, "--image-tag", "node-b", "--model-version", "v3",
        "--model-sha256", versions["v3"], "--no-branch",
    )  # fmt: skip
    sha, pushed = _push(ws, argocd, ENV)
    stepped = wait_seconds(
        "the controller's canary at 50% with its pod ready",
        lambda: (
            virtual_service_weights(argocd.cluster, ns, NAME) == {"stable": 50, "canary": 50}
            and _track_pods(argocd, ENV, "canary")
        ),
        pushed,
        timeout=180,
    )
    # The controller owns the weights now; Argo CD must not see a difference to heal.
    app = argocd.application(app_name(ENV))
    assert _synced(app, sha), app["status"]["sync"]

    canary = _track_pods(argocd, ENV, "canary")
    docs = render_env(Environment(ws.root, ENV), helm=str(BIN / "helm")).docs
    prometheus.retarget(service_monitor_job({"canary": canary}, ns, manifests=docs))
    prometheus.wait_for_targets_up(timeout=30)
    counts = _send_predictions(canary[0], 60)
    assert counts.get(500, 0) >= 20, counts

    def aborted() -> dict[str, Any] | None:
        status = rollout(argocd.cluster, ns, NAME).get("status") or {}
        return status if status.get("abort") else None

    status = argocd.cluster.wait_until("the Rollout aborted", aborted, timeout=120)
    aborted_after = time.monotonic() - pushed
    assert 'Metric "error-ratio" assessed Failed' in status.get("message", ""), status
    argocd.cluster.wait_until(
        "the VirtualService back on stable",
        lambda: virtual_service_weights(argocd.cluster, ns, NAME) == {"stable": 100, "canary": 0},
        timeout=30,
    )
    assert _synced(argocd.application(app_name(ENV)), sha)

    head = ws.head()
    kube = ["--kubectl", str(BIN / "kubectl"), "--kubeconfig", str(argocd.cluster.kubeconfig)]
    advance = ws.gitops("advance", "--env", ENV, *kube, "--push", check=False)
    verdict = time.monotonic()
    assert advance.returncode == 1, advance.stdout + advance.stderr
    subjects = ws.git("log", "--format=%s", f"{head}..HEAD").splitlines()
    assert len(subjects) == 2 and subjects[0].startswith("quarantine"), subjects
    assert "Argo Rollouts aborted" in ws.git("log", "-1", "--format=%B", "HEAD~1")
    assert ws.git("rev-parse", "origin/main") == ws.head()
    argocd.refresh(app_name(ENV))
    back = wait_seconds(
        f"{ENV} synced to the rollback and its Rollout healthy on v1",
        _rollout_on(argocd, ws.head()),
        verdict,
        timeout=180,
    )
    template = rollout(argocd.cluster, ns, NAME)["spec"]["template"]
    assert template["metadata"]["annotations"]["nepse-predictor/model-version"] == "v1"
    assert virtual_service_weights(argocd.cluster, ns, NAME) == {"stable": 100, "canary": 0}
    ok = aborted_after <= ABORT_GOAL
    details = {"env": ENV, "stepped": f"{stepped:.1f}", "back_on_v1": f"{back:.1f}"}
    report(_line("rollouts-abort", aborted_after, ok, **details))
    assert ok, f"the abort took {aborted_after:.1f}s after the push (goal {ABORT_GOAL:.0f}s)"
