"""Quarantine: one list in environments/quarantine.yaml that every environment's render gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import yaml
from conftest import V1, V2, V3, commit_file, git, snapshot

from nepse_gitops.environments import Environment
from nepse_gitops.errors import GitopsError
from nepse_gitops.render import render_env
from testkit.net import free_port


def test_quarantine_appends_the_entry_with_its_reason_in_one_commit(
    repo: Path, nepse_gitops
) -> None:
    result = nepse_gitops(
        repo, "quarantine", "--model-version", V3[1], "--reason", "wrong features"
    )

    assert result.code == 0, result.err
    text = (repo / "environments/quarantine.yaml").read_text()
    assert 'modelVersions:\n    - "' + V3[1] + '"  # ' in text
    assert "wrong features" in text
    assert "imageTags: []" in text
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "environments/quarantine.yaml"
    ]
    assert git(repo, "log", "-1", "--format=%s").strip() == f"quarantine: modelVersion {V3[1]}"

    refused = nepse_gitops(
        repo,
        "promote",
        "--to",
        "dev",
        "--image-tag",
        V3[0],
        "--model-version",
        V3[1],
        "--model-sha256",
        V3[2],
    )
    assert refused.code == 1 and "is quarantined" in refused.err


def test_a_reason_spanning_lines_stays_one_comment_and_adds_nothing_to_the_list(
    repo: Path, nepse_gitops
) -> None:
    reason = 'bad fills\n    - "0.1.0"\nimageTags:\n  - "injected"'
    result = nepse_gitops(repo, "quarantine", "--model-version", V3[1], "--reason", reason)

    assert result.code == 0, result.err
    quarantine = yaml.safe_load((repo / "environments/quarantine.yaml").read_text())["quarantine"]
    assert quarantine["modelVersions"] == [V3[1]]
    assert quarantine["imageTags"] == []
    assert (
        'bad fills - "0.1.0" imageTags: - "injected"'
        in (repo / "environments/quarantine.yaml").read_text()
    )


def test_a_second_entry_keeps_the_first_and_its_comment(repo: Path, nepse_gitops) -> None:
    assert (
        nepse_gitops(
            repo, "quarantine", "--image-tag", "deadbeef", "--reason", "crashes on start"
        ).code
        == 0
    )
    first = (repo / "environments/quarantine.yaml").read_text()

    assert nepse_gitops(repo, "quarantine", "--image-tag", "cafef00d").code == 0

    text = (repo / "environments/quarantine.yaml").read_text()
    assert text.startswith(first.split('    - "deadbeef"')[0])
    assert '    - "deadbeef"  # ' in text and "crashes on start" in text
    assert '    - "cafef00d"  # ' in text
    assert git(repo, "diff", "--stat", "HEAD~1", "HEAD").count("1 insertion") == 1


def test_refuses_a_version_an_environment_still_runs(repo: Path, nepse_gitops) -> None:
    before = snapshot(repo)

    result = nepse_gitops(repo, "quarantine", "--image-tag", V2[0])

    assert result.code == 1
    assert f"refusing to quarantine imageTag '{V2[0]}': it still runs in" in result.err
    assert "dev (slot stable" in result.err and "staging (slot blue" in result.err
    assert snapshot(repo) == before
    already = nepse_gitops(repo, "quarantine", "--image-tag", V1[0], "--dry-run")
    assert already.code == 1 and "prod (slot stable" in already.err


def test_every_environment_render_refuses_a_quarantined_slot(repo: Path, helm: str) -> None:
    text = (repo / "environments/quarantine.yaml").read_text()
    commit_file(
        repo,
        "environments/quarantine.yaml",
        text.replace("imageTags: []", f'imageTags:\n    - "{V2[0]}"\n    - "{V1[0]}"'),
        "Quarantine by hand",
    )
    for env, slot in (("dev", "stable"), ("staging", "blue"), ("prod", "stable")):
        with pytest.raises(GitopsError) as err:
            render_env(Environment(repo, env), helm=helm)
        assert f"slots.{slot}.imageTag" in str(err.value) and "quarantined" in str(err.value)


def test_an_environment_cannot_override_the_list(repo: Path, helm: str) -> None:
    text = (repo / "environments/quarantine.yaml").read_text()
    commit_file(
        repo,
        "environments/quarantine.yaml",
        text.replace("imageTags: []", f'imageTags:\n    - "{V1[0]}"'),
        "Quarantine",
    )
    values = repo / "environments/prod/values.yaml"
    values.write_text(values.read_text() + "quarantine:\n  imageTags: []\n")

    with pytest.raises(GitopsError, match="quarantined"):
        render_env(Environment(repo, "prod"), helm=helm)


def _marker(url: str, version: str) -> dict | None:
    raw = redis.Redis.from_url(url).hget("nepse:predictions:void", version)
    return None if raw is None else json.loads(raw)


def test_quarantine_prints_the_mark_that_voids_the_versions_predictions(
    repo: Path, nepse_gitops
) -> None:
    result = nepse_gitops(repo, "quarantine", "--model-version", V3[1], "--reason", "leaks")
    assert result.code == 0, result.err
    assert (
        f"  nepse-predictor predictions mark --model-version {V3[1]} "
        "--reason 'quarantined: leaks'" in result.out
    )
    assert "NEPSE_REDIS_URL set" in result.out


def test_quarantine_with_a_redis_url_marks_the_version_void(
    repo: Path, nepse_gitops, redis_server
) -> None:
    result = nepse_gitops(
        repo,
        "quarantine",
        "--model-version",
        V3[1],
        "--reason",
        "leaks future prices",
        "--redis-url",
        redis_server.url,
    )
    assert result.code == 0, result.err
    assert f"marked model version {V3[1]} void" in result.out
    marker = _marker(redis_server.url, V3[1])
    assert marker is not None and marker["reason"] == "quarantined: leaks future prices"
    assert git(repo, "log", "-1", "--format=%s").strip() == f"quarantine: modelVersion {V3[1]}"


def test_quarantine_whose_mark_fails_says_the_commit_stands_and_what_to_run(
    repo: Path, nepse_gitops
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = nepse_gitops(
        repo, "quarantine", "--model-version", V3[1], "--reason", "bad", "--redis-url", url
    )
    assert result.code == 1
    assert "the quarantine is committed, but voiding the predictions of" in result.err
    assert f"Redis at {url} is unreachable" in result.err and "Traceback" not in result.err
    assert "run it again with NEPSE_REDIS_URL set: nepse-predictor predictions mark" in result.err
    assert git(repo, "log", "-1", "--format=%s").strip() == f"quarantine: modelVersion {V3[1]}"


def test_a_dry_run_quarantine_marks_nothing(repo: Path, nepse_gitops, redis_server) -> None:
    result = nepse_gitops(
        repo, "quarantine", "--model-version", V3[1], "--dry-run", "--redis-url", redis_server.url
    )
    assert result.code == 0, result.err
    assert "dry run: nothing is marked" in result.out
    assert _marker(redis_server.url, V3[1]) is None


def test_an_image_tag_quarantine_says_predictions_are_voided_by_model_version(
    repo: Path, nepse_gitops, redis_server
) -> None:
    result = nepse_gitops(
        repo, "quarantine", "--image-tag", "deadbeef", "--redis-url", redis_server.url
    )
    assert result.code == 0, result.err
    assert "predictions are logged by model version" in result.out
    assert redis.Redis.from_url(redis_server.url).keys("*") == []
