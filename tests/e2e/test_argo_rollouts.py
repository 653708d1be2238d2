"""rollout.engine=argoRollouts with the real Argo Rollouts controller on the local cluster.

The controller (built by scripts/install-tools.sh) watches the cluster from the host. Its
pods are the kwok node's; the canary whose analysis must fail is a real server on loopback,
scraped by a real Prometheus under the labels the chart's ServiceMonitor gives a canary pod,
so the chart's AnalysisTemplate runs its real queries. Each test prints TIMING lines: the
seconds from the sync (helm upgrade) to each step the controller took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_cluster import BIN, CHART, Cluster, Release

from nepse_gitops import cli
from nepse_gitops.environments import Environment
from testkit.gitrepos import GIT_ENV, commit_all, copy_repository, git
from testkit.model_variants import one_row_only_model
from testkit.prometheus import Prometheus, render_chart, service_monitor_job
from testkit.pytest_output import fresh_namespace
from testkit.rollouts import (
    RolloutsController,
    promote,
    promoted,
    rollout,
    route_names,
    route_weights,
    virtual_service,
    virtual_service_weights,
)
from testkit.service import ServiceProcess

NAME = "nepse-predictor"
V1 = {"imageTag": "1.0.0", "modelVersion": "v1"}
V2 = {"imageTag": "1.1.0", "modelVersion": "v2"}
# Helm 4 applies server-side by default, and its upgrades then conflict with the Service
# selectors and DestinationRule subsets the controller owns; Helm 3's three-way merge keeps
# them (Argo CD ignores them instead: managedFieldsManagers in the ApplicationSet).
CLIENT_SIDE = ("--server-side=false",)


@pytest.fixture(scope="module")
def controller(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RolloutsController]:
    with RolloutsController(cluster, tmp_path_factory.mktemp("rollouts")) as running:
        yield running


def chart_values(strategy: str, provider: str, **rollouts: Any) -> dict[str, Any]:
    return {
        "rollout": {"strategy": strategy, "engine": "argoRollouts", "argoRollouts": rollouts},
        "traffic": {"provider": provider},
        "replicaCount": 2,
        "preStopSleepSeconds": 0,
        "terminationGracePeriodSeconds": 5,
    }


def values_file(folder: Path, name: str, values: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def wait_promoted(cluster: Cluster, namespace: str, controller: RolloutsController, timeout=90):
    def done() -> dict[str, Any] | None:
        obj = rollout(cluster, namespace, NAME)
        return obj if promoted(obj) else None

    try:
        return cluster.wait_until("the Rollout fully promoted", done, timeout=timeout)
    except pytest.fail.Exception:
        print(controller.log_tail())
        raise


def test_a_canary_rollout_steps_its_weights_into_the_virtual_service_in_order(
    cluster: Cluster,
    namespace: str,
    release: Release,
    controller: RolloutsController,
    tmp_path: Path,
    report_timing,
) -> None:
    steps = [
        {"setCanaryScale": {"replicas": 1}},
        {"setHeaderRoute": True},
        {"pause": {"duration": "2s"}},
        {"setHeaderRoute": False},
        {"setCanaryScale": {"matchTrafficWeight": True}},
        {"setWeight": 20},
        {"pause": {"duration": "2s"}},
        {"setWeight": 50},
        {"pause": {"duration": "2s"}},
        {"setWeight": 80},
        {"pause": {"duration": "2s"}},
    ]
    values = chart_values("canary", "istio", canary={"steps": steps})
    release.install(
        *CLIENT_SIDE, "-f", values_file(tmp_path, "v1", {**values, "slots": {"stable": V1}})
    )
    first = wait_promoted(cluster, namespace, controller)
    assert virtual_service_weights(cluster, namespace, NAME) == {"stable": 100, "canary": 0}

    synced = time.monotonic()
    release.upgrade(
        "-f", values_file(tmp_path, "v2", {**values, "slots": {"stable": V1, "canary": V2}})
    )
    seen: list[tuple[float, int, tuple[str, ...]]] = []
    deadline = synced + 120
    while time.monotonic() < deadline:
        vs = virtual_service(cluster, namespace, NAME)
        weight, routes = route_weights(vs)["canary"], tuple(route_names(vs))
        if not seen or seen[-1][1:] != (weight, routes):
            seen.append((time.monotonic() - synced, weight, routes))
        obj = rollout(cluster, namespace, NAME)
        if promoted(obj) and obj["status"]["stableRS"] != first["status"]["stableRS"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the canary did not finish in 120 s; seen {seen}\n{controller.log_tail()}")
    print("seen (seconds, canary weight, routes):", *seen, sep="\n  ")

    weights = [w for _, w, _ in seen if w]
    # The steps' weights in order; the full promotion may show 100 for a moment before the
    # canary becomes stable (and the route 100/0 again).
    distinct = [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]]
    assert distinct[:3] == [20, 50, 80] and set(distinct[3:]) <= {100}, distinct
    header_route = [t for t, _, routes in seen if routes[0] == "canary-header"]
    assert header_route, f"the header route never appeared: {seen}"
    # The controller records the new stable ReplicaSet a moment before it sets the route back.
    cluster.wait_until(
        "the route back at 100/0 on the new stable",
        lambda: virtual_service_weights(cluster, namespace, NAME) == {"stable": 100, "canary": 0},
        timeout=15,
        interval=0.2,
    )
    assert route_names(virtual_service(cluster, namespace, NAME)) == ["weighted"]
    final = rollout(cluster, namespace, NAME)["status"]
    subsets = {
        s["name"]: s.get("labels", {}).get("rollouts-pod-template-hash")
        for s in cluster.kubectl_json(
            "-n", namespace, "get", "destinationrules.networking.istio.io", NAME
        )["spec"]["subsets"]
    }
    assert subsets["stable"] == final["stableRS"]
    for label in ("stable", "canary"):
        selector = cluster.kubectl_json("-n", namespace, "get", "service", f"{NAME}-{label}")
        assert selector["spec"]["selector"]["rollouts-pod-template-hash"] == final["stableRS"]

    first_seen = {}
    for t, w, _ in seen:
        first_seen.setdefault(w, t)
    report_timing(
        "argo-rollouts-canary",
        header_route=header_route[0],
        **{f"weight_{w}": first_seen[w] for w in (20, 50, 80)},
        promoted=seen[-1][0],
    )


def test_a_blue_green_rollout_switches_the_active_service_only_after_promotion(
    cluster: Cluster,
    namespace: str,
    release: Release,
    controller: RolloutsController,
    tmp_path: Path,
    report_timing,
) -> None:
    bg = {"autoPromotionEnabled": False, "prePromotionAnalysis": False, "scaleDownDelaySeconds": 5}
    values = chart_values("blueGreen", "none", blueGreen=bg)
    blue = {**values, "slots": {"blue": V1}}
    blue["rollout"]["blueGreen"] = {"activeColor": "blue"}
    release.install(*CLIENT_SIDE, "-f", values_file(tmp_path, "blue", blue))
    first = wait_promoted(cluster, namespace, controller)["status"]["stableRS"]

    def selector(service: str) -> str | None:
        svc = cluster.kubectl_json("-n", namespace, "get", "service", service)
        return svc["spec"]["selector"].get("rollouts-pod-template-hash")

    assert selector(NAME) == first
    green = {**values, "slots": {"blue": V1, "green": V2}}
    green["rollout"] = {**values["rollout"], "blueGreen": {"activeColor": "green"}}
    synced = time.monotonic()
    release.upgrade("-f", values_file(tmp_path, "green", green))

    def previewing() -> str | None:
        hash_ = selector(f"{NAME}-preview")
        status = rollout(cluster, namespace, NAME).get("status") or {}
        ready = hash_ not in (None, first) and status.get("pauseConditions")
        return hash_ if ready else None

    preview = cluster.wait_until("the new version in preview, paused", previewing, timeout=60)
    previewed = time.monotonic() - synced
    time.sleep(2)  # paused: the active Service must stay on the old version
    assert selector(NAME) == first
    pods = {
        p["metadata"]["labels"].get("rollouts-pod-template-hash"): p["metadata"]["labels"].get(
            "nepse-predictor/track"
        )
        for p in cluster.kubectl_json("-n", namespace, "get", "pods")["items"]
    }
    assert pods.get(preview) == "preview" and pods.get(first) == "active", pods

    promoted_at = time.monotonic()
    promote(cluster, namespace, NAME)
    cluster.wait_until("the active Service on the new version", lambda: selector(NAME) == preview)
    switched = time.monotonic() - promoted_at
    assert wait_promoted(cluster, namespace, controller)["status"]["stableRS"] == preview
    report_timing("argo-rollouts-blue-green", previewed=previewed, switched_after_promote=switched)


# --- An aborted canary: the controller restores stable, git records the rollback -----------


def _send_failing_batches(server: ServiceProcess, features: list[str], count: int) -> int:
    row = {name: 0.01 * (i + 1) for i, name in enumerate(features)}
    errors = 0
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(count):
            response = client.post("/v1/predict", json={"instances": [row, row]})
            errors += response.status_code >= 500
    return errors


def _every_analysis_query_is_accepted(prometheus: Prometheus) -> None:
    """Every query of every AnalysisTemplate the ci files render parses and runs in Prometheus."""
    queries = []
    for values in sorted((CHART / "ci").glob("*argorollouts*-values.yaml")):
        for doc in render_chart("nepse-ci", [values]):
            if doc.get("kind") == "AnalysisTemplate":
                for metric in doc["spec"]["metrics"]:
                    query = metric["provider"]["prometheus"]["query"]
                    query = query.replace("{{args.track}}", "canary")
                    queries.append(query.replace("{{args.baseline}}", "stable"))
    assert len(queries) >= 6, queries
    for query in queries:
        prometheus.query(query)  # raises, naming the query and Prometheus's error


def _nepse_gitops(root: Path, *args: str) -> int:
    return cli.main(["--repo", str(root), *args])


def _environment(root: Path, env: str, prometheus: str, namespace: str) -> None:
    folder = root / "environments" / env
    folder.mkdir()
    steps = [{"setWeight": 30}, {"analysis": {}}]
    values = chart_values(
        "rolling", "istio", canary={"steps": steps}, analysis={"interval": "2s", "count": 15}
    )
    values["metrics"] = {"serviceMonitor": {"enabled": True}}
    (folder / "values.yaml").write_text(
        "# An environment released by Argo Rollouts (the e2e test's own).\n"
        + yaml.safe_dump(values, sort_keys=False)
    )
    (folder / "release.yaml").write_text(
        "# What a promotion moves.\n" + yaml.safe_dump({"slots": {"stable": V1}}, sort_keys=False)
    )
    policy = {
        "promotion": {"strategy": "canary"},
        "gate": {
            "minRequests": 10,
            "errorRatio": {"max": 0.05},
            "prometheus": {
                "url": prometheus,
                "selector": f'namespace="{namespace}"',
                "window": "1m",
            },
        },
    }
    (folder / "policy.yaml").write_text("# How releases enter.\n" + yaml.safe_dump(policy))


def test_a_failing_analysis_aborts_the_canary_and_advance_lands_rollback_and_quarantine(
    cluster: Cluster,
    controller: RolloutsController,
    second_model: Path,
    tmp_path: Path,
    report_timing,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, val in GIT_ENV.items():
        monkeypatch.setenv(key, val)
    failing = ServiceProcess(
        "failing-canary",
        one_row_only_model(second_model, tmp_path / "failing" / "v2"),
        "canary",
        tmp_path,
    )
    prometheus = Prometheus(tmp_path / "prometheus")
    with fresh_namespace(cluster, "nepse-rollouts-abort") as namespace:
        try:
            env = namespace.removeprefix("nepse-")
            root = tmp_path / "repo"
            copy_repository(root)
            _environment(root, env, prometheus.url, namespace)
            commit_all(root, f"Add the {env} environment")
            files = Environment(root, env).value_files()
            # Scraped as the operator would scrape the canary's pods of this release.
            canary = {"rollout": {"strategy": "canary"}, "slots": {"canary": V2}}
            job = service_monitor_job(
                {"canary": [failing.address]}, namespace, values_files=files, values=canary
            )
            prometheus.start(job)
            failing.wait()
            prometheus.wait_for_targets_up(timeout=30)
            features = json.loads((second_model / "metadata.json").read_text())["features"]
            assert _send_failing_batches(failing, features, 30) == 30
            prometheus.wait_until(
                f'sum(nepse_http_requests_total{{namespace="{namespace}",track="canary",'
                f'job="{NAME}-canary",status="500"}})',
                lambda result: result and float(result[0]["value"][1]) >= 30,
                timeout=20,
            )
            files = Environment(root, env).value_files()
            release = Release(cluster, namespace)

            def sync() -> None:
                release.helm(
                    "upgrade", "--install", *CLIENT_SIDE, NAME, root / "charts/nepse-predictor",
                    *[a for f in files for a in ("-f", str(f))],
                )  # fmt: skip

            sync()
            wait_promoted(cluster, namespace, controller)
            promote_args = ["--image-tag", V2["imageTag"], "--model-version", "v2"]
            assert _nepse_gitops(root, "promote", "--to", env, *promote_args, "--no-branch") == 0
            synced = time.monotonic()
            sync()

            def aborted() -> dict[str, Any] | None:
                status = rollout(cluster, namespace, NAME).get("status") or {}
                return status if status.get("abort") else None

            status = cluster.wait_until("the Rollout aborted", aborted, timeout=90)
            aborted_after = time.monotonic() - synced
            print("the controller:", status.get("message"))
            runs = cluster.kubectl_json("-n", namespace, "get", "analysisruns.argoproj.io")
            for run in runs["items"]:
                for metric in run.get("status", {}).get("metricResults", []):
                    for m in metric.get("measurements", []):
                        print(
                            f"  {metric['name']}: {m.get('phase')} {m.get('value')} at "
                            f"{m.get('startedAt')}"
                        )
            assert 'Metric "error-ratio" assessed Failed' in status.get("message", "")
            cluster.wait_until(
                "the VirtualService back on stable",
                lambda: (
                    virtual_service_weights(cluster, namespace, NAME)
                    == {"stable": 100, "canary": 0}
                ),
                timeout=30,
            )
            restored_after = time.monotonic() - synced

            kube = ["--kubectl", str(BIN / "kubectl"), "--kubeconfig", str(cluster.kubeconfig)]
            head = git(root, "rev-parse", "HEAD").strip()
            assert _nepse_gitops(root, "advance", "--env", env, *kube) == 1
            subjects = git(root, "log", "--format=%s", f"{head}..HEAD").splitlines()
            assert len(subjects) == 2, subjects
            assert "Quarantine" in subjects[0] or "quarantine" in subjects[0], subjects
            body = git(root, "log", "-1", "--format=%B", "HEAD~1")
            assert "Argo Rollouts aborted" in body and "error-ratio" in body, body
            assert yaml.safe_load(files[1].read_text()) == {"slots": {"stable": V1}}
            quarantined = yaml.safe_load((root / "environments/quarantine.yaml").read_text())
            assert "v2" in quarantined["quarantine"]["modelVersions"]

            resynced = time.monotonic()
            sync()
            wait_promoted(cluster, namespace, controller)
            healthy_after = time.monotonic() - resynced
            assert virtual_service_weights(cluster, namespace, NAME) == {"stable": 100, "canary": 0}
            assert _nepse_gitops(root, "advance", "--env", env, *kube, "--dry-run") == 0
            assert "idle" in capsys.readouterr().out
            assert _nepse_gitops(root, "advance", "--env", env, *kube) == 0
            assert git(root, "rev-parse", "HEAD~2").strip() == head
            _every_analysis_query_is_accepted(prometheus)
            report_timing(
                "argo-rollouts-abort",
                aborted=aborted_after,
                stable_restored=restored_after,
                healthy_after_rollback_sync=healthy_after,
            )
        finally:
            prometheus.stop()
            failing.stop()


def test_advance_waits_for_an_unsynced_rollout_and_names_a_cluster_it_cannot_reach(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, val in GIT_ENV.items():
        monkeypatch.setenv(key, val)
    env = namespace  # the environment's namespace is nepse-<env>: none exists for it
    root = tmp_path / "repo"
    copy_repository(root)
    _environment(root, env, "http://127.0.0.1:9", f"nepse-{env}")
    commit_all(root, f"Add the {env} environment")
    kubectl = ["--kubectl", str(BIN / "kubectl")]

    code = _nepse_gitops(
        root, "advance", "--env", env, *kubectl, "--kubeconfig", str(cluster.kubeconfig),
        "-o", "json",
    )  # fmt: skip
    outcome = json.loads(capsys.readouterr().out)
    assert code == 0, outcome
    assert outcome["result"] == "waiting"
    assert f"no Rollout {NAME} in nepse-{env} yet" in outcome["reason"]

    missing = tmp_path / "no-such-kubeconfig"
    code = _nepse_gitops(root, "advance", "--env", env, *kubectl, "--kubeconfig", str(missing))
    err = capsys.readouterr().err
    assert code == 2
    assert "nepse-gitops advance: error:" in err and "kubectl" in err and str(missing) in err
    assert "Traceback" not in err
