"""Releases that run themselves: `nepse-gitops advance`, run again and again as a schedule
would, walks each release through its plan or rolls it back, and nothing else touches git.

Real parts only (autopilot_kit.py): a `nepse-predictor serve` process per track serving a real
model (or a variant of one: testkit/model_variants.py), the chart's nginx router rendered from
the environment after every commit, a real Prometheus scraping every process with the
ServiceMonitor's labels, Redis for the shadow's pairing (and a stalling one as the slow
canary's cache). Each scenario has its own namespace label, so the gate of one never sees
another's series. Each test prints one line:

    AUTOPILOT scenario=<name> result=<finished|rolled-back|waiting> commits=<N> seconds=<S>
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from autopilot_kit import (
    CANARY_STEPS,
    Load,
    Release,
    StalledRedis,
    make_repo,
    model_version,
    run_gitops,
    slot,
)
from routerkit import SLOTS, Router, missing_tools

from testkit.model_variants import inverted_model, one_row_only_model, renamed_model
from testkit.prometheus import Prometheus, service_monitor_job
from testkit.pytest_output import report_line
from testkit.redis_server import RedisServer
from testkit.service import ServiceProcess

pytestmark = pytest.mark.slow

TRACKS = ("stable", "canary", "shadow", "blue", "green")
PLAN = {
    "canary": {"steps": CANARY_STEPS},
    "shadow": {"duration": "4s", "minAgreement": 0.9},
    "blueGreen": {"bakeBeforeFlip": "4s", "bakeBeforeFinish": "3s"},
}
UNUSED = "127.0.0.1:9"

# scenario -> the backends (by name, below) that answer as each track, and the strategy under
# which the chart renders those tracks (for the ServiceMonitor's targets).
SCENARIOS: dict[str, tuple[str, dict[str, str]]] = {
    "healthy": ("canary", {"stable": "stable", "canary": "canary"}),
    "erroring": ("canary", {"stable": "stable", "canary": "canary-erroring"}),
    "slow": ("canary", {"stable": "stable", "canary": "canary-slow"}),
    "quiet": ("canary", {"stable": "stable", "canary": "canary"}),
    "disagreeing": ("shadow", {"stable": "stable-paired", "shadow": "shadow-inverted"}),
    "shadow-to-canary": (
        "shadow",
        {"stable": "stable-paired", "shadow": "shadow-same", "canary": "canary-same"},
    ),
    "blue-green": ("blueGreen", {"blue": "blue", "green": "green"}),
    "blue-green-erroring": ("blueGreen", {"blue": "blue", "green": "green-erroring"}),
}


def namespace(scenario: str) -> str:
    return f"autopilot-{scenario}"


@pytest.fixture(scope="module")
def models(trained_model: Path, second_model: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("autopilot-models")
    return {
        "v1": trained_model,
        "v2": second_model,
        "erroring": one_row_only_model(second_model, root / "v2-one-row", "v2-one-row"),
        "inverted": inverted_model(trained_model, root / "v1-inverted", "v1-inverted"),
        "same": renamed_model(trained_model, root / "v1-again", "v1-again"),
    }


@pytest.fixture(scope="module")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("autopilot-redis"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def slow_cache(tmp_path_factory) -> Iterator[RedisServer]:
    """The slow canary's cache, stalled while that scenario runs (StalledRedis)."""
    server = RedisServer(tmp_path_factory.mktemp("autopilot-slow-cache"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def stack(
    models, redis, slow_cache, tmp_path_factory
) -> Iterator[tuple[dict[str, ServiceProcess], Prometheus]]:
    """The scenarios' processes and one Prometheus scraping them, started together."""
    problems = missing_tools()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    logs = tmp_path_factory.mktemp("autopilot-logs")
    paired = {"NEPSE_REDIS_URL": redis.url, "NEPSE_CACHE_TTL_SECONDS": "0"}
    # Every request of the slow canary looks up its cache, and waits for it as long as it takes.
    cached = {"NEPSE_REDIS_URL": slow_cache.url, "NEPSE_REDIS_TIMEOUT_MS": "2000"}
    plan = {
        "stable": ("stable", "v1", {}),
        "canary": ("canary", "v2", {}),
        "canary-erroring": ("canary", "erroring", {}),
        "canary-slow": ("canary", "v2", cached),
        "stable-paired": ("stable", "v1", paired),
        "shadow-inverted": ("shadow", "inverted", paired),
        "shadow-same": ("shadow", "same", paired),
        "canary-same": ("canary", "same", paired),
        "blue": ("blue", "v1", {}),
        "green": ("green", "v2", {}),
        "green-erroring": ("green", "erroring", {}),
    }
    started: dict[str, ServiceProcess] = {}
    server = Prometheus(tmp_path_factory.mktemp("autopilot-prometheus"))
    try:
        for name, (track, model, settings) in plan.items():
            backend = ServiceProcess(name, models[model], track, logs, settings, log_requests=True)
            started[name] = backend
        server.start(_scrape_jobs(started))
        for backend in started.values():
            backend.wait()
        server.wait_for_targets_up(timeout=30)
        yield started, server
    finally:
        server.stop()
        for backend in started.values():
            backend.stop()


def _scrape_jobs(processes: dict[str, ServiceProcess]) -> list:
    """Per scenario, the jobs the chart's ServiceMonitor makes in its namespace."""
    jobs = []
    for scenario, (strategy, tracks) in SCENARIOS.items():
        # The chart renders canary and shadow as separate phases: one job for each.
        groups = [tracks]
        if strategy == "shadow" and "canary" in tracks:
            groups = [
                {k: v for k, v in tracks.items() if k != "canary"},
                {"canary": tracks["canary"]},
            ]
        for i, group in enumerate(groups):
            render_as = "canary" if "canary" in group else strategy
            values = {
                "slots": SLOTS,
                "rollout": {"strategy": render_as},
                "traffic": {"provider": "router"},
            }
            job = service_monitor_job(
                {track: [processes[name].address] for track, name in group.items()},
                namespace(scenario),
                values=values,
            )
            jobs.append(replace(job, name=f"{job.name}/{i}"))
    return jobs


@pytest.fixture
def release_in(stack, models, tmp_path: Path):
    """make(scenario, env, slots) -> a Release of that environment in a fresh repository,
    routed to the scenario's processes; its router and load stop with the test."""
    processes, prometheus = stack
    started: list = []

    def make(scenario, env, slots, load_rate: float = 80.0, plan: dict | None = None):
        _, tracks = SCENARIOS[scenario]
        repo = make_repo(
            tmp_path / "repo",
            env,
            namespace(scenario),
            prometheus.url,
            {name: models[model] for name, model in slots.items()},
            plan or PLAN,
        )
        upstreams = {t: processes[tracks[t]].address if t in tracks else UNUSED for t in TRACKS}
        router = Router(tmp_path / "router", upstreams)
        started.append(router)
        release = Release(repo, env, router, prometheus.url)
        row = {name: 0.01 for name in _features(models["v1"])}
        # blue is active: the idle green's preview Service takes the preview traffic.
        preview = f"http://{processes[tracks['green']].address}" if "green" in tracks else None
        load = Load(router.url, row, rate=load_rate, preview_url=preview)
        started.append(load)
        return release, load

    yield make
    for item in reversed(started):
        item.stop()


def _features(model_dir: Path) -> list[str]:
    import json

    return json.loads((model_dir / "metadata.json").read_text())["features"]


def _report(request, scenario: str, release: Release, outcome: dict, began: float) -> None:
    report_line(
        request.config,
        f"AUTOPILOT scenario={scenario} result={outcome['result']} "
        f"commits={len(release.commits())} seconds={time.monotonic() - began:.1f} "
        f"reason={outcome.get('reason', '')[:300]!r}",
    )


def _promote(release: Release, models: dict[str, Path], model: str) -> None:
    version = slot(models[model])
    run_gitops(
        release.repo,
        "promote",
        "--to",
        release.env,
        "--image-tag",
        version["imageTag"],
        "--model-version",
        version["modelVersion"],
        "--model-sha256",
        version["modelSha256"],
        "--no-branch",
    )


def test_autopilot_healthy_canary_walks_every_step_to_finish(release_in, models, request):
    release, load = release_in("healthy", "prod", {"stable": "v1"})
    _promote(release, models, "v2")
    began = release.begin(load)

    outcome = release.drive(until=("finished", "rolled-back"), timeout=90)

    _report(request, "healthy", release, outcome, began)
    assert outcome["result"] == "finished", release.outcomes[-3:]
    assert release.commits() == [
        "step(prod): canary weight 0 -> 5",
        "step(prod): canary weight 5 -> 25",
        "step(prod): canary weight 25 -> 50",
        "step(prod): canary weight 50 -> 100",
        f"finish(prod): stable={slot(models['v2'])['imageTag']}/{model_version(models['v2'])}",
    ]
    for rev in ("HEAD~3", "HEAD~2", "HEAD~1", "HEAD"):
        assert "Nepse-Gate: passed" in release.message(rev)
    times = [int(t) for t in release.log("%ct")]
    pauses = [3, 2, 2, 2]  # CANARY_STEPS: each step holds before the next commit
    for i, pause in enumerate(pauses):
        assert times[i + 1] - times[i] >= pause - 1, (i, times)
    assert load.statuses.keys() <= {200}, (load.statuses, load.errors)


@pytest.mark.parametrize(
    ("scenario", "check"),
    [("erroring", "error ratio"), ("slow", "p99")],
)
def test_autopilot_bad_canary_is_rolled_back_and_quarantined(
    release_in, models, slow_cache, request, scenario: str, check: str
):
    release, load = release_in(scenario, "prod", {"stable": "v1"})
    candidate = "erroring" if scenario == "erroring" else "v2"
    _promote(release, models, candidate)
    release.mark_start()
    release.deploy()
    stall = StalledRedis(slow_cache) if scenario == "slow" else contextlib.nullcontext()
    with stall:
        load.start()
        began = time.monotonic()
        try:
            outcome = release.drive(until=("rolled-back", "finished"), timeout=60)
        finally:
            load.stop()

    _report(request, scenario, release, outcome, began)
    assert outcome["result"] == "rolled-back", release.outcomes[-3:]
    version = model_version(models[candidate])
    subjects = release.commits()
    assert subjects[0] == "step(prod): canary weight 0 -> 5"
    # The slow canary may pass its first small step; it never reaches finish.
    assert subjects[-2].startswith("rollback(prod): revert the release in flight (")
    assert subjects[-1] == f"quarantine: modelVersion {version}"
    rollback_message = release.message("HEAD~1")
    assert f"Reason: gate failed for 0.1.0/{version} (canary): {check}" in rollback_message
    assert check in release.message("HEAD")
    quarantine = (release.repo / "environments/quarantine.yaml").read_text()
    assert f'"{version}"' in quarantine
    assert "strategy" not in (release.repo / "environments/prod/release.yaml").read_text()


def test_autopilot_quiet_canary_waits_without_a_commit(release_in, models, request):
    release, load = release_in("quiet", "prod", {"stable": "v1"}, load_rate=4.0)
    _promote(release, models, "v2")
    run_gitops(release.repo, "set-weight", "--env", "prod", "--weight", "5")
    began = release.begin(load)
    time.sleep(3)

    outcomes = [release.advance() for _ in range(2)]

    _report(request, "quiet", release, outcomes[-1], began)
    assert [o["result"] for o in outcomes] == ["waiting"] * 2
    assert outcomes[-1]["reason"].startswith("inconclusive: the candidate (canary) answered")
    assert release.commits() == []


def test_autopilot_disagreeing_shadow_is_rolled_back_and_quarantined(release_in, models, request):
    release, load = release_in("disagreeing", "prod", {"stable": "v1"})
    version = slot(models["inverted"])
    run_gitops(
        release.repo,
        "shadow",
        "start",
        "--env",
        "prod",
        "--image-tag",
        version["imageTag"],
        "--model-version",
        version["modelVersion"],
        "--model-sha256",
        version["modelSha256"],
    )
    began = release.begin(load)

    outcome = release.drive(until=("rolled-back", "advanced"), timeout=60)

    _report(request, "disagreeing", release, outcome, began)
    assert outcome["result"] == "rolled-back", release.outcomes[-3:]
    name = f"{version['imageTag']}/{version['modelVersion']}"
    assert release.commits() == [
        f"rollback(prod): revert shadow(prod): start {name} at 100%",
        f"quarantine: modelVersion {version['modelVersion']}",
    ]
    assert "shadow agreement" in release.message("HEAD~1")
    assert load.statuses.keys() <= {200}, "a shadow never answers users"


def test_autopilot_shadow_that_agrees_is_promoted_and_walked_to_finish(release_in, models, request):
    two_steps = {**PLAN, "canary": {"steps": CANARY_STEPS[2:]}}
    release, load = release_in("shadow-to-canary", "prod", {"stable": "v1"}, plan=two_steps)
    version = slot(models["same"])
    run_gitops(
        release.repo,
        "shadow",
        "start",
        "--env",
        "prod",
        "--image-tag",
        version["imageTag"],
        "--model-version",
        version["modelVersion"],
        "--model-sha256",
        version["modelSha256"],
    )
    began = release.begin(load)

    outcome = release.drive(until=("finished", "rolled-back"), timeout=120)

    _report(request, "shadow-to-canary", release, outcome, began)
    assert outcome["result"] == "finished", release.outcomes[-3:]
    name = f"{version['imageTag']}/{version['modelVersion']}"
    assert release.commits() == [
        f"shadow(prod): stop {name}",
        f"promote(prod): canary={name} from build",
        "step(prod): canary weight 0 -> 50",
        "step(prod): canary weight 50 -> 100",
        f"finish(prod): stable={name}",
    ]
    assert "Nepse-Next: promote" in release.message("HEAD~4")


def test_autopilot_blue_green_bakes_flips_bakes_and_finishes(release_in, models, request):
    release, load = release_in("blue-green", "staging", {"blue": "v1", "green": "v1"})
    _promote(release, models, "v2")
    began = release.begin(load)

    outcome = release.drive(until=("finished", "rolled-back"), timeout=90)

    _report(request, "blue-green", release, outcome, began)
    assert outcome["result"] == "finished", release.outcomes[-3:]
    name = f"0.1.0/{model_version(models['v2'])}"
    subjects = release.commits()
    assert len(subjects) == 2
    assert subjects[0] == "flip(staging): active colour blue -> green"
    assert subjects[1] == f"finish(staging): green={name}"
    results = [o["result"] for o in release.outcomes]
    assert results.index("advanced") > 0, "the flip waits for its bake"
    assert load.statuses.keys() <= {200}, (load.statuses, load.errors)


def test_autopilot_blue_green_idle_colour_erroring_is_rolled_back_before_the_flip(
    release_in, models, request
):
    release, load = release_in("blue-green-erroring", "staging", {"blue": "v1", "green": "v1"})
    _promote(release, models, "erroring")
    began = release.begin(load)

    outcome = release.drive(until=("rolled-back", "advanced", "finished"), timeout=60)

    _report(request, "blue-green-erroring", release, outcome, began)
    assert outcome["result"] == "rolled-back", release.outcomes[-3:]
    version = model_version(models["erroring"])
    assert release.commits() == [
        f"rollback(staging): revert promote(staging): green=0.1.0/{version} from build",
        f"quarantine: modelVersion {version}",
    ]
    assert "error ratio" in release.message("HEAD~1")
    # Users stayed on blue throughout: only the preview traffic met the failing colour.
    assert load.user_statuses.keys() <= {200}, load.user_statuses


def test_autopilot_runs_in_parallel_leave_one_commit(release_in, models, request):
    """Two schedules firing at once in one checkout: one run moves, the other is busy."""
    release, _ = release_in("healthy", "prod", {"stable": "v1"})
    _promote(release, models, "v2")
    release.mark_start()
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: release.advance(), range(2)))
    results = sorted(o["result"] for o in outcomes)
    assert results in (["advanced", "busy"], ["advanced", "waiting"]), outcomes
    assert release.commits() == ["step(prod): canary weight 0 -> 5"]
