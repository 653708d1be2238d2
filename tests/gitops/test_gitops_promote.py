"""Promotion: one commit touching only the promoted keys; exact reverts; clean refusals."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import V1, V2, V3, commit_file, git, log_subjects, rendered, snapshot

from nepse_gitops.gitrepo import parse_trailers

PROD_RELEASE = "environments/prod/release.yaml"


def _comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_promotion_is_one_commit_on_a_new_branch_touching_only_the_promoted_keys(
    repo: Path, nepse_gitops
) -> None:
    before = (repo / PROD_RELEASE).read_text()
    start = git(repo, "rev-parse", "HEAD").strip()

    result = nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod")

    assert result.code == 0, result.err
    assert git(repo, "branch", "--show-current").strip() == f"promote/prod/{V2[0]}-{V2[1]}"
    assert git(repo, "rev-list", "--count", f"{start}..HEAD").strip() == "1"
    assert git(repo, "diff", "--name-only", start, "HEAD").split() == [PROD_RELEASE]
    diff = git(repo, "diff", "--unified=0", start, "HEAD")
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert sorted(changed) == sorted(
        [
            '+  strategy: "canary"',
            '-    imageTag: ""',
            f'+    imageTag: "{V2[0]}"',
            '-    modelVersion: ""',
            f'+    modelVersion: "{V2[1]}"',
            '-    modelSha256: ""',
            f'+    modelSha256: "{V2[2]}"',
        ]
    )
    # The canary slot's lines changed (not the shadow slot's, which holds the same empties).
    assert re.search(r"canary:\n    imageTag: \"7a6b", (repo / PROD_RELEASE).read_text())
    after = (repo / PROD_RELEASE).read_text()
    assert _comments(after) == _comments(before)
    assert git(repo, "status", "--porcelain") == ""


def test_promotion_commit_message_is_structured_for_rollback(repo: Path, nepse_gitops) -> None:
    assert nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod").code == 0

    message = git(repo, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == f"promote(prod): canary={V2[0]}/{V2[1]} from staging"
    trailers = parse_trailers(message)
    assert trailers["nepse-env"] == ["prod"]
    assert trailers["nepse-action"] == ["promote"]
    assert trailers["nepse-from"] == ["staging"]
    assert trailers["nepse-image-tag"] == [V2[0]]
    assert trailers["nepse-model-version"] == [V2[1]]
    # git itself reads the same trailers.
    parsed = git(repo, "log", "-1", "--format=%(trailers:key=Nepse-Action,valueonly)").strip()
    assert parsed == "promote"


def test_git_revert_of_a_promotion_restores_files_and_rendered_manifests_exactly(
    repo: Path, nepse_gitops, helm: str
) -> None:
    files_before = snapshot(repo).files
    manifests_before = rendered(repo, "prod", helm)

    assert nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod").code == 0
    promoted = rendered(repo, "prod", helm)
    assert promoted != manifests_before
    assert f"nepse-predictor:{V2[0]}" in promoted
    assert "name: nepse-predictor-canary" in promoted

    git(repo, "revert", "--no-edit", "HEAD")

    assert snapshot(repo).files == files_before
    assert rendered(repo, "prod", helm) == manifests_before


def test_promotion_from_the_release_pipeline_replaces_dev_in_one_rolling_commit(
    repo: Path, nepse_gitops
) -> None:
    result = nepse_gitops(
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
        "--no-branch",
    )
    assert result.code == 0, result.err
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert log_subjects(repo)[0] == f"promote(dev): stable={V3[0]}/{V3[1]} from build"
    assert "dev: rolling, serves " + f"{V3[0]}/{V3[1]}" in nepse_gitops(repo, "status").out


def test_dry_run_prints_the_diff_and_changes_nothing(repo: Path, nepse_gitops) -> None:
    before = snapshot(repo)

    result = nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod", "--dry-run")

    assert result.code == 0, result.err
    assert f'+    imageTag: "{V2[0]}"' in result.out
    assert '+  strategy: "canary"' in result.out
    assert "dry run" in result.out
    assert "Nepse-Action: promote" in result.out
    assert snapshot(repo) == before


def test_refuses_a_version_the_source_does_not_run(repo: Path, nepse_gitops) -> None:
    before = snapshot(repo)

    result = nepse_gitops(
        repo,
        "promote",
        "--from",
        "staging",
        "--to",
        "prod",
        "--image-tag",
        V3[0],
        "--model-version",
        V3[1],
    )

    assert result.code == 1
    assert f"refusing to promote {V3[0]}/{V3[1]} from staging" in result.err
    assert f"it serves {V2[0]}/{V2[1]} in slot green" in result.err
    assert snapshot(repo) == before


def test_refuses_the_idle_colour_of_a_blue_green_source(repo: Path, nepse_gitops) -> None:
    release = (repo / "environments/staging/release.yaml").read_text()
    blue = release.split("green:")[0].replace(V2[0], V3[0]).replace(V2[1], V3[1])
    commit_file(
        repo,
        "environments/staging/release.yaml",
        blue.replace(V2[2], V3[2]) + "green:" + release.split("green:", 1)[1],
        "Put a candidate on blue",
    )
    before = snapshot(repo)

    result = nepse_gitops(
        repo,
        "promote",
        "--from",
        "staging",
        "--to",
        "prod",
        "--image-tag",
        V3[0],
        "--model-version",
        V3[1],
    )

    assert result.code == 1
    assert "sits in its blue slot, which does not serve users' traffic" in result.err
    assert snapshot(repo) == before


def test_refuses_a_quarantined_version(repo: Path, nepse_gitops) -> None:
    quarantine = (repo / "environments/quarantine.yaml").read_text()
    commit_file(
        repo,
        "environments/quarantine.yaml",
        quarantine.replace("modelVersions: []", f'modelVersions:\n    - "{V3[1]}"'),
        "Quarantine a model",
    )
    before = snapshot(repo)

    result = nepse_gitops(
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

    assert result.code == 1
    assert f"modelVersion '{V3[1]}' is quarantined in environments/quarantine.yaml" in result.err
    assert snapshot(repo) == before


def test_refuses_to_promote_into_a_dirty_work_tree(repo: Path, nepse_gitops) -> None:
    values = repo / "environments/prod/values.yaml"
    values.write_text(values.read_text() + "# local edit\n")
    before = snapshot(repo)

    result = nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod")

    assert result.code == 1
    assert "the work tree has uncommitted changes" in result.err
    assert "M environments/prod/values.yaml" in result.err
    assert snapshot(repo) == before


def test_refuses_a_target_that_would_not_render(repo: Path, nepse_gitops) -> None:
    release = (repo / "environments/dev/release.yaml").read_text()
    commit_file(
        repo,
        "environments/dev/release.yaml",
        release.replace(V2[0], V3[0]).replace(V2[1], V3[1]).replace(V2[2], ""),
        "Run a build without a model checksum",
    )
    before = snapshot(repo)

    result = nepse_gitops(repo, "promote", "--from", "dev", "--to", "staging")

    assert result.code == 1
    assert "helm could not render environment 'staging'" in result.err
    assert 'slots.blue.modelSha256 "" is not a sha256' in result.err
    assert snapshot(repo) == before


def test_refuses_while_a_release_is_in_flight_and_when_nothing_would_change(
    repo: Path, nepse_gitops
) -> None:
    assert (
        nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod", "--no-branch").code == 0
    )
    before = snapshot(repo)

    again = nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod")
    same = nepse_gitops(repo, "promote", "--from", "dev", "--to", "staging")

    assert again.code == 1
    assert "a release is in flight there (canary=" in again.err
    assert same.code == 1
    assert f"staging already serves {V2[0]}/{V2[1]}" in same.err
    assert snapshot(repo) == before


def test_unknown_environment_is_named(repo: Path, nepse_gitops) -> None:
    result = nepse_gitops(repo, "promote", "--from", "staging", "--to", "qa")
    assert result.code == 1
    assert "unknown environment 'qa': environments/qa/ does not exist" in result.err
    assert "(known: dev, prod, staging)" in result.err


def test_pushes_the_branch_and_says_so_when_gh_is_missing(
    repo: Path, tmp_path: Path, nepse_gitops, monkeypatch
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "--quiet", "origin", "main")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # git, but no gh

    result = nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod", "--pr")

    branch = f"promote/prod/{V2[0]}-{V2[1]}"
    assert f"pushed {branch} to origin" in result.out
    assert result.code == 1
    assert "the GitHub CLI `gh` is not on PATH, so no pull request was opened" in result.err
    remote_head = git(remote, "rev-parse", branch).strip()
    assert remote_head == git(repo, "rev-parse", "HEAD").strip()


def test_the_installed_command_runs(repo: Path) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "nepse-gitops"), "status"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"prod: rolling, serves {V1[0]}/{V1[1]} (stable)" in proc.stdout


def test_refuses_a_render_the_argo_cd_project_would_not_sync(repo: Path, nepse_gitops) -> None:
    values = (repo / "environments/dev/values.yaml").read_text()
    commit_file(
        repo, "environments/dev/values.yaml", values + "platform: knative\n", "Try dev on Knative"
    )
    before = snapshot(repo)

    result = nepse_gitops(
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

    assert result.code == 1
    assert "Service/nepse-predictor (group 'serving.knative.dev') is not allowed by" in result.err
    assert "argocd/apps/project.yaml; Argo CD would refuse to sync it" in result.err
    assert snapshot(repo) == before
