"""Rollback is git revert of the environment's last promotion or step, found by trailers."""

from __future__ import annotations

from pathlib import Path

from conftest import V2, git, log_subjects, rendered, snapshot

from nepse_gitops.gitrepo import parse_trailers


def _canary_release(repo: Path, nepse_gitops) -> None:
    assert (
        nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod", "--no-branch").code == 0
    )
    for weight in ("5", "25"):
        assert nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", weight).code == 0


def test_rollback_reverts_the_last_step_and_marks_itself(repo: Path, nepse_gitops) -> None:
    _canary_release(repo, nepse_gitops)
    step = git(repo, "rev-parse", "HEAD").strip()
    at_5 = git(repo, "show", "HEAD~1:environments/prod/release.yaml")

    result = nepse_gitops(repo, "rollback", "--env", "prod", "--reason", "p99 too high")

    assert result.code == 0, result.err
    assert (repo / "environments/prod/release.yaml").read_text() == at_5
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("rollback(prod): revert step(prod): canary weight 5 -> 25\n")
    trailers = parse_trailers(message)
    assert trailers["nepse-action"] == ["rollback"]
    assert trailers["nepse-env"] == ["prod"]
    assert trailers["nepse-reverts"] == [step]
    assert trailers["nepse-reason"] == ["p99 too high"]


def test_repeated_rollbacks_walk_back_one_step_each(repo: Path, nepse_gitops) -> None:
    original = (repo / "environments/prod/release.yaml").read_bytes()
    _canary_release(repo, nepse_gitops)

    for _ in range(3):
        assert nepse_gitops(repo, "rollback", "--env", "prod").code == 0

    assert (repo / "environments/prod/release.yaml").read_bytes() == original
    assert [s.split(": revert ")[1] for s in log_subjects(repo)[:3]] == [
        f"promote(prod): canary={V2[0]}/{V2[1]} from staging",
        "step(prod): canary weight 0 -> 5",
        "step(prod): canary weight 5 -> 25",
    ]
    nothing = nepse_gitops(repo, "rollback", "--env", "prod")
    assert nothing.code == 1
    assert "nothing to roll back in prod" in nothing.err


def test_release_rollback_undoes_the_whole_release_in_one_commit(
    repo: Path, nepse_gitops, helm: str
) -> None:
    files_before = snapshot(repo).files
    manifests_before = rendered(repo, "prod", helm)
    _canary_release(repo, nepse_gitops)
    head = git(repo, "rev-parse", "HEAD").strip()

    result = nepse_gitops(repo, "rollback", "--env", "prod", "--release")

    assert result.code == 0, result.err
    assert git(repo, "rev-list", "--count", f"{head}..HEAD").strip() == "1"
    assert log_subjects(repo)[0] == "rollback(prod): revert the release in flight (3 commits)"
    assert snapshot(repo).files == files_before
    assert rendered(repo, "prod", helm) == manifests_before
    again = nepse_gitops(repo, "rollback", "--env", "prod", "--release")
    assert again.code == 1 and "nothing to roll back in prod" in again.err


def test_rollback_only_touches_its_own_environment(repo: Path, nepse_gitops) -> None:
    _canary_release(repo, nepse_gitops)
    assert nepse_gitops(repo, "promote", "--from", "dev", "--to", "staging").code == 1  # same
    dev_before = (repo / "environments/dev/release.yaml").read_bytes()

    assert nepse_gitops(repo, "rollback", "--env", "dev").code == 1
    assert nepse_gitops(repo, "rollback", "--env", "prod").code == 0

    assert (repo / "environments/dev/release.yaml").read_bytes() == dev_before
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "environments/prod/release.yaml"
    ]


def test_rollback_refuses_a_dirty_work_tree_and_changes_nothing(repo: Path, nepse_gitops) -> None:
    _canary_release(repo, nepse_gitops)
    (repo / "notes.txt").write_text("scratch\n")
    before = snapshot(repo)

    result = nepse_gitops(repo, "rollback", "--env", "prod")

    assert result.code == 1
    assert "?? notes.txt" in result.err
    assert snapshot(repo) == before


def test_a_plain_git_revert_counts_as_undone(repo: Path, nepse_gitops) -> None:
    _canary_release(repo, nepse_gitops)
    git(repo, "revert", "--no-edit", "HEAD")

    result = nepse_gitops(repo, "rollback", "--env", "prod")

    assert result.code == 0, result.err
    assert log_subjects(repo)[0] == "rollback(prod): revert step(prod): canary weight 0 -> 5"


def test_dry_run_lists_what_would_be_reverted(repo: Path, nepse_gitops) -> None:
    _canary_release(repo, nepse_gitops)
    before = snapshot(repo)

    result = nepse_gitops(repo, "rollback", "--env", "prod", "--release", "--dry-run")

    assert result.code == 0
    assert "would revert in prod" in result.out
    assert result.out.count("prod") >= 3
    assert snapshot(repo) == before


def test_a_rollback_as_a_pull_request_from_a_branch_into_itself_is_refused_like_a_step(
    repo: Path, tmp_path: Path, nepse_gitops
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    _canary_release(repo, nepse_gitops)
    git(repo, "push", "--quiet", "origin", "main")
    before = snapshot(repo)

    step = nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", "50", "--pr")
    undo = nepse_gitops(repo, "rollback", "--env", "prod", "--pr")

    refusal = "cannot open a pull request from 'main' into itself; pass --branch"
    assert (step.code, undo.code) == (1, 1)
    assert refusal in step.err and refusal in undo.err
    # Refused before anything was written, committed or pushed.
    assert snapshot(repo) == before
    assert git(remote, "rev-parse", "main").strip() == before.head
