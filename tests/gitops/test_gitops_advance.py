"""`advance` and `status` as far as git decides them: the step and since when, waiting out a
pause, concurrent runs, a branch that moved, and the failure paths. Runs that ask the gate
against a real Prometheus are in tests/router/test_router_autopilot.py."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import V2, edit_prod_policy, git, log_subjects, snapshot

from nepse_gitops.gitrepo import GitRepo
from testkit.model_variants import renamed_model
from testkit.prometheus import Prometheus, scraped_canary, service_monitor_job

UNREACHABLE = "http://127.0.0.1:9"


def _promote_canary(nepse_gitops, repo: Path, seconds_ago: int = 0) -> None:
    """Promote staging's version to prod as a canary, committed ``seconds_ago``: the gate judges
    a step's own window, so a step younger than a scrape may find no sample yet and wait."""
    args = ("promote", "--from", "staging", "--to", "prod", "--no-branch")
    if seconds_ago:
        committed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))
        os.environ["GIT_COMMITTER_DATE"] = committed
        try:
            result = nepse_gitops(repo, *args)
        finally:
            del os.environ["GIT_COMMITTER_DATE"]
    else:
        result = nepse_gitops(repo, *args)
    assert result.code == 0, result.err


def _advance_json(nepse_gitops, repo: Path, *args: str) -> tuple[int, dict]:
    result = nepse_gitops(repo, "advance", "--env", "prod", "-o", "json", *args)
    return result.code, json.loads(result.out)


def test_status_names_the_step_since_when_and_the_next_move(repo: Path, nepse_gitops) -> None:
    _promote_canary(nepse_gitops, repo)
    assert nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", "25").code == 0
    committed = int(git(repo, "show", "-s", "--format=%ct").strip())

    report = json.loads(nepse_gitops(repo, "status", "--env", "prod", "-o", "json").out)[0]

    assert report["phase"] == "canary"
    assert report["step"] == f"canary {V2[0]}/{V2[1]} at weight 25 (step 2 of 4)"
    assert report["since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(committed))
    assert report["due"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(committed + 7200))
    assert report["next"]["move"] == "set-weight"
    assert report["next"]["detail"] == "weight 50 (step 3 of 4)"
    assert report["next"]["why"].startswith(f"the step holds until {report['due']} (")
    assert report["next"]["why"].endswith(" left)")
    text = nepse_gitops(repo, "status", "--env", "prod").out
    assert "  next:  weight 50 (step 3 of 4)\n" in text


def test_status_of_an_environment_without_a_release_says_so(repo: Path, nepse_gitops) -> None:
    out = nepse_gitops(repo, "status", "--env", "dev").out
    assert out.startswith("dev: rolling, serves ")
    report = json.loads(nepse_gitops(repo, "status", "--env", "dev", "-o", "json").out)[0]
    assert (report["phase"], report["next"]["move"]) == ("idle", "none")


def test_advance_waits_out_the_pause_without_asking_the_gate(repo: Path, nepse_gitops) -> None:
    _promote_canary(nepse_gitops, repo)
    assert nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", "5").code == 0
    before = snapshot(repo)

    # The Prometheus named here does not exist: a waiting run never needs it.
    code, outcome = _advance_json(nepse_gitops, repo, "--prometheus", UNREACHABLE)

    assert code == 0
    assert outcome["result"] == "waiting"
    assert outcome["commits"] == []
    assert "the step holds until" in outcome["reason"]
    assert outcome["reason"].endswith("then: weight 25 (step 2 of 4)")
    assert snapshot(repo) == before


def test_a_pause_counts_from_the_merge_that_brought_the_step(repo: Path, nepse_gitops) -> None:
    git(repo, "switch", "--quiet", "-c", "promote/prod")
    long_ago = "2026-01-01T00:00:00Z"
    os.environ["GIT_COMMITTER_DATE"] = long_ago
    try:
        _promote_canary(nepse_gitops, repo)
        assert nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", "5").code == 0
    finally:
        del os.environ["GIT_COMMITTER_DATE"]
    git(repo, "switch", "--quiet", "main")
    git(repo, "merge", "--quiet", "--no-ff", "-m", "Merge the prod canary", "promote/prod")
    merged = int(git(repo, "show", "-s", "--format=%ct", "HEAD").strip())

    assert GitRepo(repo).landed_at(git(repo, "rev-parse", "HEAD^2").strip()) == merged
    _code, outcome = _advance_json(nepse_gitops, repo, "--prometheus", UNREACHABLE)
    assert outcome["result"] == "waiting"
    assert outcome["since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(merged))


def test_advance_with_the_gate_unreachable_is_an_error_and_changes_nothing(
    repo: Path, nepse_gitops
) -> None:
    _promote_canary(nepse_gitops, repo)
    before = snapshot(repo)

    result = nepse_gitops(repo, "advance", "--env", "prod", "--prometheus", UNREACHABLE)

    assert result.code == 2
    assert f"cannot query Prometheus at {UNREACHABLE}" in result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before


def test_advance_in_an_environment_without_a_release_does_nothing(repo: Path, nepse_gitops) -> None:
    before = snapshot(repo)
    result = nepse_gitops(repo, "advance", "--env", "dev")
    assert result.code == 0
    assert result.out.startswith("advance dev: idle: nothing: promote a version")
    assert snapshot(repo) == before


def test_a_second_run_in_the_same_checkout_is_busy(repo: Path, nepse_gitops) -> None:
    _promote_canary(nepse_gitops, repo)
    before = snapshot(repo)
    with (repo / ".git/nepse-advance.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, outcome = _advance_json(nepse_gitops, repo, "--prometheus", UNREACHABLE)
    assert (code, outcome["result"]) == (0, "busy")
    assert snapshot(repo) == before


def test_advance_refuses_a_dirty_work_tree(repo: Path, nepse_gitops) -> None:
    _promote_canary(nepse_gitops, repo)
    (repo / "environments/prod/values.yaml").write_text("# edited by hand\n")
    result = nepse_gitops(repo, "advance", "--env", "prod", "--prometheus", UNREACHABLE)
    assert result.code == 2
    assert "uncommitted changes" in result.err


@pytest.fixture
def two_clones(repo: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A bare remote holding the repository, and two clones of it (two CI runners)."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repo), str(remote)], check=True)
    clones = []
    for name in ("runner-a", "runner-b"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "--quiet", str(remote), str(clone)], check=True)
        clones.append(clone)
    return remote, clones[0], clones[1]


def test_a_run_that_finds_the_remote_moved_does_nothing(two_clones, nepse_gitops) -> None:
    _remote, a, b = two_clones
    _promote_canary(nepse_gitops, a)
    git(a, "push", "--quiet", "origin", "main")
    # Runner b has not pulled the promotion.
    before = snapshot(b)

    code, outcome = _advance_json(nepse_gitops, b, "--push", "--prometheus", UNREACHABLE)

    assert (code, outcome["result"]) == (0, "moved")
    assert "nothing done" in outcome["reason"]
    assert snapshot(b) == before


def test_a_run_whose_push_loses_the_race_drops_its_commit(
    two_clones, nepse_gitops, canary_prometheus: str
) -> None:
    """Both runners decide from the same tip; the other one's push lands first (simulated by a
    pre-push hook that pushes from runner b), so this run's push is refused."""
    remote, a, b = two_clones
    _promote_canary(nepse_gitops, a, seconds_ago=30)
    git(a, "push", "--quiet", "origin", "main")
    git(b, "pull", "--quiet", "origin", "main")
    git(b, "commit", "--quiet", "--allow-empty", "-m", "Another runner's step")
    hook = a / ".git/hooks/pre-push"
    # Hooks run with GIT_DIR set to runner a's repository: runner b's push must not see it.
    hook.write_text(
        f"#!/bin/sh\nunset GIT_DIR GIT_INDEX_FILE\ngit -C {b} push --quiet origin main\n"
    )
    hook.chmod(0o755)
    remote_before = git(a, "ls-remote", str(remote), "main")
    head_before = git(a, "rev-parse", "HEAD").strip()

    # At weight 0 the first step needs no verdict, so the run commits and pushes.
    code, outcome = _advance_json(nepse_gitops, a, "--push", "--prometheus", canary_prometheus)

    assert (code, outcome["result"]) == (0, "moved"), outcome
    assert "its commits are dropped" in outcome["reason"]
    assert git(a, "rev-parse", "HEAD").strip() == head_before
    assert git(a, "status", "--porcelain") == ""
    after = git(a, "ls-remote", str(remote), "main")
    assert after != remote_before
    assert after.split()[0] == git(b, "rev-parse", "HEAD").strip()


def test_dry_run_prints_the_move_and_commits_nothing(
    repo: Path, nepse_gitops, canary_prometheus: str
) -> None:
    _promote_canary(nepse_gitops, repo, seconds_ago=30)
    before = snapshot(repo)

    code, outcome = _advance_json(
        nepse_gitops, repo, "--dry-run", "--prometheus", canary_prometheus
    )

    assert code == 0
    assert (outcome["result"], outcome["action"], outcome["dry_run"]) == (
        "advanced",
        "set-weight",
        True,
    )
    assert outcome["commits"] == []
    assert snapshot(repo) == before


def test_the_first_step_commit_records_the_step_and_the_verdict(
    repo: Path, nepse_gitops, canary_prometheus: str
) -> None:
    _promote_canary(nepse_gitops, repo, seconds_ago=30)
    code, outcome = _advance_json(nepse_gitops, repo, "--prometheus", canary_prometheus)
    assert (code, outcome["result"]) == (0, "advanced")
    assert log_subjects(repo)[0] == "step(prod): canary weight 0 -> 5"
    message = git(repo, "show", "-s", "--format=%B")
    for trailer in ("Nepse-Weight: 5", "Nepse-Step: 1/4", "Nepse-Advance: set-weight"):
        assert trailer in message
    assert outcome["commits"] == [git(repo, "rev-parse", "HEAD").strip()]


@pytest.fixture(scope="module")
def canary_prometheus(trained_model: Path, tmp_path_factory) -> Iterator[str]:
    """A real Prometheus scraping prod's canary as the chart's ServiceMonitor labels it: a
    real server of the version staging pins (V2), which no request has reached yet."""
    root = tmp_path_factory.mktemp("advance-canary")
    with scraped_canary(renamed_model(trained_model, root / V2[1], V2[1]), root) as url:
        yield url


@pytest.fixture(scope="module")
def unscraped_prometheus(tmp_path_factory) -> Iterator[str]:
    """A real Prometheus whose only prod canary target never answers: pods not started yet,
    or too starved to answer a scrape."""
    prometheus = Prometheus(tmp_path_factory.mktemp("advance-unscraped") / "prometheus")
    slots = {track: {"imageTag": "0.1.0", "modelVersion": "v"} for track in ("stable", "canary")}
    values = {"slots": slots, "rollout": {"strategy": "canary"}}
    never_answers = UNREACHABLE.removeprefix("http://")
    prometheus.start(service_monitor_job({"canary": [never_answers]}, "nepse-prod", values=values))
    try:
        yield prometheus.url
    finally:
        prometheus.stop()


def test_a_candidate_not_scraped_yet_in_a_young_step_is_waited_for(
    repo: Path, nepse_gitops, unscraped_prometheus: str
) -> None:
    _promote_canary(nepse_gitops, repo)
    before = snapshot(repo)

    code, outcome = _advance_json(nepse_gitops, repo, "--prometheus", unscraped_prometheus)

    assert (code, outcome["result"], outcome["commits"]) == (0, "waiting", []), outcome
    reason = outcome["reason"]
    assert "a candidate still not scraped after the gate's window (15m) is an error" in reason
    assert "no pod of the candidate track (canary) is scraped there" in reason
    assert snapshot(repo) == before


def test_a_candidate_still_not_scraped_after_the_window_is_an_error(
    repo: Path, nepse_gitops, unscraped_prometheus: str
) -> None:
    edit_prod_policy(repo, "window: 15m", "window: 1s", "Judge prod over one second")
    _promote_canary(nepse_gitops, repo)
    time.sleep(2)
    before = snapshot(repo)

    result = nepse_gitops(
        repo, "advance", "--env", "prod", "--prometheus", unscraped_prometheus, "-o", "json"
    )

    assert result.code == 2, result.out + result.err
    assert json.loads(result.out)["result"] == "error"
    assert "no pod of the candidate track (canary) is scraped there" in result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before


def test_advance_of_an_unknown_environment_names_it(repo: Path, nepse_gitops) -> None:
    result = nepse_gitops(repo, "advance", "--env", "prdo", "-o", "json")
    assert result.code == 2
    assert json.loads(result.out)["result"] == "error"
    assert "prdo" in result.err
    assert "Traceback" not in result.err
