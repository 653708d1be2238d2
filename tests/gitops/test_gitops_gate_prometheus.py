"""The release gate against a real Prometheus: Debian's prometheus scrapes real
`nepse-predictor serve` processes every second, labelled as the chart's ServiceMonitor makes
the Prometheus Operator label them in prod (testkit/prometheus.py), and
`nepse-gitops gate --env prod --prometheus URL` judges prod's canary with prod's own
`gate.prometheus.selector` and `trackLabel`.

Each scenario is its own Prometheus, as if it were its own cluster; one stable process
(model v1) is scraped by all of them:

- healthy: a canary on model v2
- failing: a canary on the one-row-only model (testkit/model_variants.py: batches fail, HTTP 500)
- quiet:   a canary on model v2 that answered only a few requests
- unready: the healthy canary and a second canary pod without a model, whose /ready answers
  503 (as to its readiness probe) and which is sent to paths no route matches

Every prediction process gets the same bounded mix of single rows and batches on
/v1/predict and /v2/models/{model_name}/infer, and a few /ready and unmatched requests, at a
steady pace over a few scrape intervals, after Prometheus has scraped every process once.
increase() never counts what a series held at its first sample; the service's prediction
counters start at 0 (Metrics.start_at_zero), so every answer is counted, even the quiet
canary's few inside one scrape interval (and, as increase() extrapolates to the window's ends,
a few more than were sent).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import V1, V2, Result, commit_file, edit_prod_policy, git, log_subjects, snapshot

from nepse_gitops import cli
from nepse_gitops.environments import Environment
from nepse_gitops.gate_metrics_prometheus import PrometheusSource
from nepse_gitops.gitrepo import parse_trailers
from nepse_gitops.prediction_routes import promql_route_matcher
from nepse_gitops.render import render_env
from testkit.gitrepos import GIT_ENV, commit_all, copy_repository
from testkit.model_variants import one_row_only_model
from testkit.net import free_port
from testkit.prometheus import Prometheus, describe, service_monitor_job, value
from testkit.service import ServiceProcess

GITOPS = Path(sys.executable).parent / "nepse-gitops"
PREDICTIONS = 120  # prediction requests per process, a quarter of each kind
QUIET = 10  # the quiet canary's
MIN_REQUESTS = 50
WINDOW = "1m"
PACE = 0.02  # seconds between two requests of one process
UNREADY_PROBES = 60
NAMESPACE = "nepse-prod"
ROUTES = promql_route_matcher()


def _requests(features: list[str], predictions: int) -> list[tuple[str, str, Any]]:
    """Single rows and two-row batches on both protocols, with /ready and an unmatched path."""
    row = {name: 0.01 * (i + 1) for i, name in enumerate(features)}
    flat = [row[name] for name in features]

    def oip(rows: int) -> dict:
        tensor = {"name": "features", "shape": [rows, len(features)], "datatype": "FP32"}
        return {"inputs": [{**tensor, "data": flat * rows}]}

    kinds = [
        ("POST", "/v1/predict", {"features": row}),
        ("POST", "/v1/predict", {"instances": [row, row]}),
        ("POST", "/v2/models/nepse-predictor/infer", oip(1)),
        ("POST", "/v2/models/nepse-predictor/infer", oip(2)),
    ]
    plan: list[tuple[str, str, Any]] = []
    for i in range(predictions):
        plan.append(kinds[i % len(kinds)])
        if i % 10 == 0:
            plan += [("GET", "/ready", None), ("GET", "/no/such/page", None)]
    return plan


def _send(server: ServiceProcess, plan: list[tuple[str, str, Any]]) -> Counter[tuple[str, int]]:
    """The plan at a steady pace; returns (path, status) counts."""
    counts: Counter[tuple[str, int]] = Counter()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for method, path, body in plan:
            response = client.request(method, path, json=body)
            counts[(path, response.status_code)] += 1
            time.sleep(PACE)
    return counts


def _predictions(counts: Counter[tuple[str, int]]) -> int:
    return sum(n for (path, _), n in counts.items() if path.startswith(("/v1/", "/v2/")))


class Cluster:
    """The servers, one Prometheus per scenario, and what each server answered."""

    def __init__(self) -> None:
        self.servers: dict[str, ServiceProcess] = {}
        self.prometheus: dict[str, Prometheus] = {}
        self.answered: dict[str, Counter[tuple[str, int]]] = {}
        self.released: Path = Path()
        self.versions: dict[str, str] = {}


def _version(model_dir: Path) -> str:
    return json.loads((model_dir / "metadata.json").read_text())["version"]


def _released_repo(root: Path, stable: str, canary: str) -> Path:
    """A copy of the repository with prod in a canary release at weight 25, gated after
    MIN_REQUESTS requests over WINDOW; prod's selector and track label stay as they are."""
    copy_repository(root)
    commit_all(root, "Lay out the environments")
    release = root / "environments/prod/release.yaml"
    commit_file(
        root,
        "environments/prod/release.yaml",
        release.read_text().replace(V1[1], stable),
        "Serve the test model",
    )
    policy = root / "environments/prod/policy.yaml"
    text = policy.read_text()
    assert "minRequests: 500" in text and "window: 15m" in text
    commit_file(
        root,
        "environments/prod/policy.yaml",
        text.replace("minRequests: 500", f"minRequests: {MIN_REQUESTS}").replace(
            "window: 15m", f"window: {WINDOW}"
        ),
        "Gate after a few requests over a short window",
    )
    promote = [
        "promote", "--to", "prod", "--image-tag", V2[0], "--model-version", canary,
        "--model-sha256", V2[2], "--no-branch",
    ]  # fmt: skip
    assert cli.main(["--repo", str(root), *promote]) == 0
    assert cli.main(["--repo", str(root), "set-weight", "--env", "prod", "--weight", "25"]) == 0
    return root


@pytest.fixture(scope="module")
def cluster(
    trained_model: Path,
    second_model: Path,
    helm: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("gate-prometheus")
    failing = one_row_only_model(second_model, work / "failing" / second_model.name)
    c = Cluster()
    c.versions = {"stable": _version(trained_model), "canary": _version(second_model)}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, val in GIT_ENV.items():
                mp.setenv(key, val)
            mp.setenv("NEPSE_HELM", helm)
            c.released = _released_repo(
                work / "released", c.versions["stable"], c.versions["canary"]
            )
        manifests = render_env(Environment(c.released, "prod"), helm=helm).docs
        logs = work / "logs"
        logs.mkdir()
        for name, model, track in (
            ("stable", trained_model, "stable"),
            ("healthy", second_model, "canary"),
            ("failing", failing, "canary"),
            ("quiet", second_model, "canary"),
            ("unready", work / "no-model" / "v2", "canary"),
        ):
            c.servers[name] = ServiceProcess(name, model, track, logs)
        s = c.servers
        canaries = {
            "healthy": [s["healthy"].address],
            "failing": [s["failing"].address],
            "quiet": [s["quiet"].address],
            "unready": [s["healthy"].address, s["unready"].address],
        }
        jobs = {
            scenario: service_monitor_job(
                {"stable": [s["stable"].address], "canary": pods},
                namespace=NAMESPACE,
                manifests=manifests,
            )
            for scenario, pods in canaries.items()
        }
        print(describe(jobs["unready"]))
        for scenario in jobs:
            c.prometheus[scenario] = Prometheus(work / f"prometheus-{scenario}")
        # Prometheus takes about 5 s to apply its first targets: start all while servers start.
        with ThreadPoolExecutor(len(jobs)) as pool:
            list(pool.map(lambda sc: c.prometheus[sc].start(jobs[sc]), jobs))
        for server in s.values():
            server.wait()
        for prom in c.prometheus.values():
            prom.wait_for_targets_up(timeout=30)

        features = json.loads((trained_model / "metadata.json").read_text())["features"]
        plans = {name: _requests(features, PREDICTIONS) for name in s}
        plans["quiet"] = _requests(features, QUIET)
        plans["unready"] = [("GET", "/ready", None)] * UNREADY_PROBES + [
            ("GET", "/no/such/page", None)
        ] * 10
        with ThreadPoolExecutor(len(plans)) as pool:
            answered = dict(
                zip(plans, pool.map(lambda n: _send(s[n], plans[n]), plans), strict=True)
            )
        c.answered = answered

        # Wait until every Prometheus holds the final count of every pod's prediction answers.
        name_of = {server.address: name for name, server in s.items()}
        for scenario, prom in c.prometheus.items():
            addresses = [s["stable"].address, *canaries[scenario]]
            expected = {a: _predictions(answered[name_of[a]]) for a in addresses}
            prom.wait_until(
                f"sum by (instance) (nepse_http_requests_total{{{ROUTES}}})",
                lambda result, expected=expected: (
                    {r["metric"]["instance"]: int(float(r["value"][1])) for r in result} == expected
                ),
                timeout=15,
            )
        yield c
    finally:
        for prom in c.prometheus.values():
            prom.stop()
        for server in c.servers.values():
            server.stop()


@pytest.fixture
def repo(cluster: Cluster, tmp_path: Path) -> Path:
    """A fresh copy of the released repository (its git history included)."""
    root = tmp_path / "repo"
    shutil.copytree(cluster.released, root)
    return root


def _gate(run: Callable[..., Result], repo: Path, prom: Prometheus, *extra: str) -> Result:
    result = run(repo, "gate", "--env", "prod", "--prometheus", prom.url, *extra)
    print(result.out, result.err, sep="\n")  # shown when a test fails
    return result


def _candidate_requests(result: Result) -> float:
    match = re.search(r"requests: candidate (\d+),", result.out)
    assert match, result.out
    return float(match.group(1))


def test_the_traffic_reached_every_server_as_planned(cluster: Cluster) -> None:
    a = cluster.answered
    for name in ("stable", "healthy"):
        assert {status for (_, status) in a[name]} == {200, 404}, a[name]
    failing: Counter[int] = Counter()
    for (path, status), n in a["failing"].items():
        if path.startswith(("/v1/", "/v2/")):
            failing[status] += n
    assert failing == {200: PREDICTIONS // 2, 500: PREDICTIONS // 2}
    assert a["unready"] == {("/ready", 503): UNREADY_PROBES, ("/no/such/page", 404): 10}


def test_prometheus_labels_the_series_as_the_service_monitor_does(cluster: Cluster) -> None:
    prom = cluster.prometheus["healthy"]
    series = prom.series('nepse_http_requests_total{route="/v1/predict",status="200"}')
    labels = {(s["job"], s["namespace"], s["track"], s["service"]) for s in series}
    assert labels == {
        ("nepse-predictor-stable", NAMESPACE, "stable", "nepse-predictor-stable"),
        ("nepse-predictor-canary", NAMESPACE, "canary", "nepse-predictor-canary"),
    }
    # honorLabels: the service's own track label on nepse_model_info is kept as it is.
    info = prom.query(f'nepse_model_info{{namespace="{NAMESPACE}",track="canary"}}')
    assert {r["metric"]["version"] for r in info} == {cluster.versions["canary"]}


def test_a_healthy_canary_passes_and_commits_nothing(cluster: Cluster, repo: Path, nepse_gitops):
    before = snapshot(repo)

    result = _gate(nepse_gitops, repo, cluster.prometheus["healthy"])

    assert result.code == 0, result.out + result.err
    # increase() extrapolates to the window's ends, so it may count more than were sent, but
    # never fewer: the service's prediction counters start at 0 (Metrics.start_at_zero).
    assert _candidate_requests(result) >= PREDICTIONS
    assert "[pass] error ratio: 0 (limit 0.01)" in result.out
    assert "[pass] p99 latency" in result.out
    assert "gate passed for prod" in result.out
    assert snapshot(repo) == before


def test_a_failing_canary_is_rolled_back_by_one_commit_naming_the_reason(
    cluster: Cluster, repo: Path, nepse_gitops
) -> None:
    promote, step = git(repo, "log", "-2", "--format=%H").split()[::-1]
    before_release = git(repo, "show", "HEAD~2:environments/prod/release.yaml")

    result = _gate(nepse_gitops, repo, cluster.prometheus["failing"])

    assert result.code == 1, result.out + result.err
    assert "[FAIL] error ratio: 0.5" in result.out
    assert log_subjects(repo)[0] == "rollback(prod): revert the release in flight (2 commits)"
    assert (repo / "environments/prod/release.yaml").read_text() == before_release
    trailers = parse_trailers(git(repo, "log", "-1", "--format=%B"))
    assert trailers["nepse-action"] == ["rollback"]
    assert sorted(trailers["nepse-reverts"]) == sorted([promote, step])
    reason = trailers["nepse-reason"][0]
    assert reason.startswith(f"gate failed for {V2[0]}")
    assert "error ratio 0.5" in reason and "beyond 0.01" in reason
    assert git(repo, "status", "--porcelain") == ""


def test_a_canary_with_too_few_requests_is_inconclusive(
    cluster: Cluster, repo: Path, nepse_gitops
) -> None:
    before = snapshot(repo)

    result = _gate(nepse_gitops, repo, cluster.prometheus["quiet"])

    assert result.code == 3, result.out + result.err
    assert f"the gate needs at least {MIN_REQUESTS}" in result.out
    # Its few requests, all answered within one scrape interval, are counted all the same.
    assert QUIET <= _candidate_requests(result) < MIN_REQUESTS
    assert snapshot(repo) == before


def test_readiness_503s_and_unmatched_paths_never_count_as_a_candidates_errors(
    cluster: Cluster, repo: Path, nepse_gitops
) -> None:
    prom = cluster.prometheus["unready"]
    canary = f'namespace="{NAMESPACE}",track="canary"'
    # The failures are in Prometheus, on the canary track...
    ready = prom.query(f'sum(nepse_http_requests_total{{{canary},route="/ready",status="503"}})')
    assert value(ready) == UNREADY_PROBES
    unmatched = prom.query(f'sum(nepse_http_requests_total{{{canary},route="unmatched"}})')
    assert value(unmatched) >= 10
    assert value(prom.query(f"sum(increase(nepse_http_requests_total{{{canary}}}[{WINDOW}]))"))

    result = _gate(nepse_gitops, repo, prom)

    # ... and the gate judges the prediction routes only.
    assert result.code == 0, result.out + result.err
    assert "[pass] error ratio: 0 (limit 0.01)" in result.out


def test_every_query_the_gate_sends_is_accepted_by_prometheus(
    cluster: Cluster, repo: Path, nepse_gitops, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    original = PrometheusSource._vector

    def record(self: PrometheusSource, client: httpx.Client, promql: str) -> list[dict]:
        sent.append(promql)
        return original(self, client, promql)

    monkeypatch.setattr(PrometheusSource, "_vector", record)
    prom = cluster.prometheus["healthy"]

    assert _gate(nepse_gitops, repo, prom).code == 0

    # Per track: versions, requests, errors, p99, shadow agree and disagree; for the
    # candidate also whether any of its pods is scraped.
    assert len(sent) == 2 * 6 + 1
    for promql in sent:
        assert f'namespace="{NAMESPACE}"' in promql
        prom.query(promql)  # raises on a parse error
    requests = [q for q in sent if q.startswith("sum(increase(nepse_http_requests_total")]
    assert all(ROUTES in q for q in requests)
    assert all(value(prom.query(q)) for q in requests if "status=~" not in q)


def test_a_selector_that_matches_no_target_is_an_error_naming_it(
    cluster: Cluster, repo: Path
) -> None:
    edit_prod_policy(
        repo,
        'selector: namespace="nepse-prod"',
        'selector: namespace="nepse-stagin"',
        "Change the gate",
    )
    before = snapshot(repo)
    env = {**os.environ, **GIT_ENV}

    result = subprocess.run(
        [str(GITOPS), "--repo", str(repo), "gate", "--env", "prod", "--prometheus",
         cluster.prometheus["healthy"].url],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert 'no nepse_model_ready series matching {namespace="nepse-stagin",track="canary"}' in (
        result.stderr
    )
    assert "no pod of the candidate track (canary) is scraped there" in result.stderr
    assert "check gate.prometheus.selector and trackLabel" in result.stderr
    assert snapshot(repo) == before


def test_a_selector_prometheus_cannot_parse_is_an_error(
    cluster: Cluster, repo: Path, nepse_gitops
) -> None:
    edit_prod_policy(
        repo,
        'selector: namespace="nepse-prod"',
        "selector: namespace=nepse-prod",
        "Change the gate",
    )

    result = _gate(nepse_gitops, repo, cluster.prometheus["healthy"])

    assert result.code == 2
    assert "Prometheus rejected the query" in result.err
    assert "parse error" in result.err


def test_a_canary_serving_another_model_than_its_slot_pins_is_an_error(
    cluster: Cluster, repo: Path, nepse_gitops
) -> None:
    release = repo / "environments/prod/release.yaml"
    canary = cluster.versions["canary"]
    assert release.read_text().count(f'modelVersion: "{canary}"') == 1
    commit_file(
        repo,
        "environments/prod/release.yaml",
        release.read_text().replace(f'modelVersion: "{canary}"', 'modelVersion: "v9"'),
        "Pin another canary model",
    )

    result = _gate(nepse_gitops, repo, cluster.prometheus["healthy"])

    assert result.code == 2, result.out + result.err
    assert f"the candidate metrics come from model {canary}, but prod's canary slot pins v9" in (
        result.err
    )


def test_an_unreachable_prometheus_is_an_error(repo: Path, nepse_gitops) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = nepse_gitops(repo, "gate", "--env", "prod", "--prometheus", url)
    assert result.code == 2
    assert f"cannot query Prometheus at {url}" in result.err
