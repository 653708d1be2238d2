"""The release gate against real service processes (`nepse-predictor serve`) and their /metrics.

Three servers run on loopback: stable (model v1), a healthy canary (model v2) and a failing
canary: model v2 with a graph that fails every batch (testkit.model_variants.py, HTTP 500).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from conftest import V1, V2, commit_file, edit_prod_policy, git, log_subjects, snapshot

from nepse_gitops.gate_config import GateConfig
from nepse_gitops.gate_evaluation import evaluate
from nepse_gitops.gate_metrics import TrackMetrics, histogram_quantile
from nepse_gitops.gitrepo import parse_trailers
from testkit.model_variants import one_row_only_model
from testkit.net import free_port
from testkit.service import ServiceProcess

REQUESTS = 120
# `gate -o json`: the same keys whatever the verdict (CI reads them).
GATE_DOCUMENT_KEYS = {
    "env",
    "result",
    "reason",
    "rollback",
    "candidate",
    "candidateVersion",
    "stable",
    "candidateRequests",
    "stableRequests",
    "inconclusive",
    "passed",
    "checks",
}


@pytest.fixture(scope="session")
def failing_model(second_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return one_row_only_model(second_model, tmp_path_factory.mktemp("failing") / second_model.name)


def _traffic(server: ServiceProcess, features: list[str]) -> dict[int, int]:
    """Bounded traffic: half single rows, half two-row batches; returns status counts."""
    row = {name: 0.01 * i for i, name in enumerate(features)}
    counts: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(REQUESTS):
            body = {"features": row} if i % 2 else {"instances": [row, row]}
            status = client.post("/v1/predict", json=body).status_code
            counts[status] = counts.get(status, 0) + 1
    return counts


@pytest.fixture(scope="module")
def servers(
    trained_model: Path,
    second_model: Path,
    failing_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("server-logs")
    started: dict[str, ServiceProcess] = {}
    try:
        started["stable"] = ServiceProcess("stable", trained_model, "stable", logs)
        started["good"] = ServiceProcess("good", second_model, "canary", logs)
        started["bad"] = ServiceProcess("bad", failing_model, "canary", logs)
        for server in started.values():
            server.wait()
        features = json.loads((trained_model / "metadata.json").read_text())["features"]
        assert _traffic(started["stable"], features) == {200: REQUESTS}
        assert _traffic(started["good"], features) == {200: REQUESTS}
        assert _traffic(started["bad"], features) == {200: REQUESTS // 2, 500: REQUESTS // 2}
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def canary_in_prod(repo: Path, nepse_gitops, trained_model: Path, second_model: Path) -> Path:
    """prod serves model v1 as stable and runs model v2 as a canary at weight 25."""
    stable_version = json.loads((trained_model / "metadata.json").read_text())["version"]
    canary_version = json.loads((second_model / "metadata.json").read_text())["version"]
    release = repo / "environments/prod/release.yaml"
    commit_file(
        repo,
        "environments/prod/release.yaml",
        release.read_text().replace(V1[1], stable_version),
        "Serve the test model",
    )
    edit_prod_policy(repo, "minRequests: 500", "minRequests: 100", "Gate after 100 requests")
    assert (
        nepse_gitops(
            repo,
            "promote",
            "--to",
            "prod",
            "--image-tag",
            V2[0],
            "--model-version",
            canary_version,
            "--model-sha256",
            V2[2],
            "--no-branch",
        ).code
        == 0
    )
    assert nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", "25").code == 0
    return repo


def _gate(nepse_gitops, repo: Path, stable: ServiceProcess, candidate: ServiceProcess, *extra: str):
    return nepse_gitops(
        repo,
        "gate",
        "--env",
        "prod",
        "--stable-url",
        f"{stable.url}/metrics",
        "--candidate-url",
        f"{candidate.url}/metrics",
        *extra,
    )


def test_a_failing_canary_is_rolled_back_by_one_commit(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    repo = canary_in_prod
    before_release = git(repo, "show", "HEAD~2:environments/prod/release.yaml")
    promote, step = git(repo, "log", "-2", "--format=%H").split()[::-1]

    result = _gate(nepse_gitops, repo, servers["stable"], servers["bad"])

    assert result.code == 1, result.err
    assert "[FAIL] error ratio: 0.5 (limit 0.01)" in result.out
    assert "60 of 120 answers were errors" in result.out
    assert log_subjects(repo)[0] == "rollback(prod): revert the release in flight (2 commits)"
    assert (repo / "environments/prod/release.yaml").read_text() == before_release
    trailers = parse_trailers(git(repo, "log", "-1", "--format=%B"))
    assert trailers["nepse-action"] == ["rollback"]
    assert sorted(trailers["nepse-reverts"]) == sorted([promote, step])
    assert trailers["nepse-reason"][0].startswith("gate failed for ")
    assert git(repo, "status", "--porcelain") == ""


def test_a_failing_canary_rolled_back_is_voided_in_the_prediction_log(
    canary_in_prod: Path,
    servers: dict[str, ServiceProcess],
    nepse_gitops,
    redis_server,
    second_model,
) -> None:
    canary_version = json.loads((second_model / "metadata.json").read_text())["version"]
    result = _gate(
        nepse_gitops,
        canary_in_prod,
        servers["stable"],
        servers["bad"],
        "--redis-url",
        redis_server.url,
    )
    assert result.code == 1, result.err
    assert f"marked model version {canary_version} void" in result.out
    raw = redis.Redis.from_url(redis_server.url).hget("nepse:predictions:void", canary_version)
    marker = json.loads(raw)
    assert marker["reason"].startswith(f"nepse-gitops gate prod: gate failed for {V2[0]}")
    assert "error ratio 0.5 beyond 0.01" in marker["reason"]


def test_a_failing_canary_rolled_back_without_redis_prints_the_mark(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops, second_model
) -> None:
    canary_version = json.loads((second_model / "metadata.json").read_text())["version"]
    result = _gate(nepse_gitops, canary_in_prod, servers["stable"], servers["bad"])
    assert result.code == 1, result.err
    assert (
        f"  nepse-predictor predictions mark --model-version {canary_version} "
        "--reason 'nepse-gitops gate prod: gate failed for" in result.out
    )


def test_a_rollback_whose_mark_fails_is_an_error_that_says_the_rollback_stands(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = _gate(
        nepse_gitops, canary_in_prod, servers["stable"], servers["bad"], "--redis-url", url
    )
    assert result.code == 2
    assert "the gate failed and prod is rolled back, but voiding the predictions" in result.err
    assert f"Redis at {url} is unreachable" in result.err
    assert log_subjects(canary_in_prod)[0].startswith("rollback(prod)")


def test_a_healthy_canary_passes_and_commits_nothing(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    before = snapshot(canary_in_prod)

    result = _gate(nepse_gitops, canary_in_prod, servers["stable"], servers["good"])

    assert result.code == 0, result.out + result.err
    assert "[pass] error ratio: 0 (limit 0.01)" in result.out
    assert "[pass] p99 latency" in result.out
    assert "gate passed for prod" in result.out
    assert snapshot(canary_in_prod) == before


def test_a_failing_canary_with_no_rollback_only_reports(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    before = snapshot(canary_in_prod)
    result = _gate(nepse_gitops, canary_in_prod, servers["stable"], servers["bad"], "--no-rollback")
    assert result.code == 1
    assert snapshot(canary_in_prod) == before


def test_too_little_traffic_is_inconclusive(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    edit_prod_policy(canary_in_prod, "minRequests: 100", "minRequests: 100000", "Wait")
    before = snapshot(canary_in_prod)

    result = _gate(nepse_gitops, canary_in_prod, servers["stable"], servers["bad"])

    assert result.code == 3
    assert "the gate needs at least 100000" in result.out
    assert snapshot(canary_in_prod) == before


def test_endpoints_serving_another_model_are_an_error(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    before = snapshot(canary_in_prod)
    result = _gate(nepse_gitops, canary_in_prod, servers["good"], servers["stable"])
    assert result.code == 2
    assert "check the URLs" in result.err
    assert snapshot(canary_in_prod) == before


def test_unreachable_metrics_are_an_error(canary_in_prod: Path, nepse_gitops) -> None:
    port = free_port()
    result = nepse_gitops(
        canary_in_prod,
        "gate",
        "--env",
        "prod",
        "--stable-url",
        f"http://127.0.0.1:{port}/metrics",
        "--candidate-url",
        f"http://127.0.0.1:{port}/metrics",
    )
    assert result.code == 2
    assert f"cannot scrape http://127.0.0.1:{port}/metrics" in result.err


def test_nothing_to_gate_without_a_release_in_flight(repo: Path, nepse_gitops) -> None:
    result = nepse_gitops(
        repo,
        "gate",
        "--env",
        "prod",
        "--stable-url",
        "http://x/metrics",
        "--candidate-url",
        "http://y/metrics",
    )
    assert result.code == 2
    assert "nothing to gate in prod: no release is in flight" in result.err


def test_windowed_gate_judges_only_the_traffic_inside_the_window(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops, trained_model: Path
) -> None:
    """With --window the counters are differenced: earlier failures no longer count."""
    features = json.loads((trained_model / "metadata.json").read_text())["features"]
    row = {name: 0.0 for name in features}

    import threading
    import time

    edit_prod_policy(canary_in_prod, "minRequests: 100", "minRequests: 20", "Gate early")

    def single_rows() -> None:
        time.sleep(0.5)  # after the first scrape
        with httpx.Client(base_url=servers["bad"].url, timeout=10) as client:
            for _ in range(40):
                assert client.post("/v1/predict", json={"features": row}).status_code == 200

    thread = threading.Thread(target=single_rows)
    thread.start()
    try:
        result = _gate(
            nepse_gitops, canary_in_prod, servers["stable"], servers["bad"], "--window", "3s"
        )
    finally:
        thread.join()
    # Inside the window the failing canary answered only single rows, all successfully.
    assert result.code == 0, result.out + result.err
    assert "requests: candidate 40," in result.out
    assert "[pass] error ratio: 0 (limit 0.01)" in result.out


# -- the arithmetic, against PromQL's definitions ------------------------------------------


def test_histogram_quantile_interpolates_like_promql() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 0.5: 100.0, float("inf"): 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.2 + 0.3 * 9 / 10)
    assert histogram_quantile(0.99, {0.1: 0.0, float("inf"): 10.0}) == 0.1
    assert histogram_quantile(0.99, {}) is None


def test_latency_and_shadow_agreement_thresholds() -> None:
    cfg = GateConfig(
        min_requests=10, max_p99_seconds=0.25, max_p99_ratio=1.5, min_shadow_agreement=0.97
    )
    stable = TrackMetrics("stable", requests=100, buckets={0.1: 100.0, float("inf"): 100.0})
    slow = TrackMetrics(
        "shadow",
        requests=100,
        buckets={0.1: 10.0, 0.5: 100.0, float("inf"): 100.0},
        shadow_agree=90,
        shadow_disagree=10,
    )
    result = evaluate("prod", cfg, stable, slow)
    failed = {c.name for c in result.failures}
    assert failed == {"p99 latency", "p99 ratio", "shadow agreement"}
    silent = TrackMetrics("shadow", requests=100, buckets={0.1: 100.0, float("inf"): 100.0})
    assert evaluate("prod", cfg, stable, silent).inconclusive is not None


def test_gate_json_reports_the_verdict_checks_and_rollback_commit(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    passed = _gate(nepse_gitops, canary_in_prod, servers["stable"], servers["good"], "-o", "json")
    failed = _gate(nepse_gitops, canary_in_prod, servers["stable"], servers["bad"], "-o", "json")

    ok, bad = json.loads(passed.out), json.loads(failed.out)
    assert set(ok) == set(bad) == GATE_DOCUMENT_KEYS
    assert (passed.code, ok["result"], ok["rollback"], ok["reason"]) == (0, "pass", None, None)
    assert (ok["candidate"], ok["stable"], ok["passed"]) == ("canary", "stable", True)
    assert ok["candidateVersion"].startswith(f"{V2[0]}/")
    for check in ok["checks"]:
        assert set(check) == {"name", "value", "limit", "passed", "detail"}
        assert check["passed"] is True
    assert {c["name"] for c in ok["checks"]} >= {"error ratio", "p99 latency"}
    assert (failed.code, bad["result"]) == (1, "fail")
    assert bad["rollback"] == git(canary_in_prod, "rev-parse", "HEAD").strip()
    assert bad["reason"].startswith("gate failed for ")
    assert "committed" in failed.err  # the log goes to stderr, the document alone to stdout


def test_gate_json_of_an_inconclusive_gate_gives_the_reason_with_the_same_keys(
    canary_in_prod: Path, servers: dict[str, ServiceProcess], nepse_gitops
) -> None:
    edit_prod_policy(canary_in_prod, "minRequests: 100", "minRequests: 100000", "Wait")

    result = _gate(nepse_gitops, canary_in_prod, servers["stable"], servers["bad"], "-o", "json")

    doc = json.loads(result.out)
    assert set(doc) == GATE_DOCUMENT_KEYS
    assert (result.code, doc["result"], doc["passed"], doc["rollback"]) == (
        3,
        "inconclusive",
        False,
        None,
    )
    assert doc["reason"] == doc["inconclusive"]
    assert doc["reason"].endswith("the gate needs at least 100000")
    assert doc["checks"] == []


def test_gate_json_of_an_error_gives_the_reason_with_the_same_keys(
    repo: Path, nepse_gitops
) -> None:
    result = nepse_gitops(
        repo, "gate", "--env", "prod", "--prometheus", "http://127.0.0.1:9", "-o", "json"
    )

    doc = json.loads(result.out)
    assert set(doc) == GATE_DOCUMENT_KEYS
    assert (result.code, doc["env"], doc["result"], doc["passed"]) == (2, "prod", "error", False)
    assert doc["reason"].startswith("nothing to gate in prod: no release is in flight")
    assert (doc["candidate"], doc["checks"]) == (None, [])
    assert "nepse-gitops gate: error: nothing to gate in prod" in result.err
