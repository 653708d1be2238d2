"""Quarantine: one list in environments/quarantine.yaml that every environment's render gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import V1, V2, V3, commit_file, git, snapshot

from nepse_gitops.environments import Environment
from nepse_gitops.errors import GitopsError
from nepse_gitops.render import render_env


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
