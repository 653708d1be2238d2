"""`nepse-gitops init`: a copy of this repository pointed at its own git URL, image and model
store in one commit that renders for every environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, snapshot
from ruamel.yaml import YAML

UPSTREAM = "https://github.com/nepse-predictor/nepse-predictor.git"
OWN = "git://127.0.0.1:9418/nepse-predictor.git"


def _load(path: Path):
    return YAML(typ="safe", pure=True).load(path.read_text())


def _urls(node) -> set[str]:
    """Every `repoURL` value and `sourceRepos` entry under ``node``."""
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key == "repoURL":
                found.add(value)
            elif key == "sourceRepos":
                found |= set(value)
            else:
                found |= _urls(value)
        return found
    if isinstance(node, list):
        return set().union(*(_urls(item) for item in node)) if node else set()
    return set()


def _repo_urls(repo: Path) -> set[str]:
    return set().union(*(_urls(_load(p)) for p in (repo / "argocd").rglob("*.yaml")))


def test_init_points_every_argocd_source_and_environment_at_the_copy(
    repo: Path, nepse_gitops
) -> None:
    result = nepse_gitops(
        repo, "init", "--repo-url", OWN, "--image-repository", "registry.example:5000/nepse",
        "--model-url-base", "https://models.example/nepse",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert _repo_urls(repo) == {OWN}
    appset = _load(repo / "argocd/apps/applicationset.yaml")["spec"]
    assert appset["generators"][0]["git"]["repoURL"] == OWN
    assert {s["repoURL"] for s in appset["template"]["spec"]["sources"]} == {OWN}
    assert _load(repo / "argocd/apps/project.yaml")["spec"]["sourceRepos"] == [OWN]
    for env in ("dev", "staging", "prod"):
        values = _load(repo / f"environments/{env}/values.yaml")
        assert values["image"]["repository"] == "registry.example:5000/nepse"
        assert values["model"]["url"]["base"] == "https://models.example/nepse"
    message = git(repo, "log", "-1", "--format=%B")
    assert "Nepse-Action: init" in message
    assert f"Previous repoURL: {UPSTREAM}" in message
    assert git(repo, "status", "--porcelain") == ""
    # Comments and layout survive: only the replaced values moved.
    diff = git(repo, "show", "--format=", "--stat", "HEAD")
    assert "7 files changed, 12 insertions(+), 12 deletions(-)" in diff


def test_init_leaves_other_sources_alone(repo: Path, nepse_gitops) -> None:
    appset = repo / "argocd/apps/applicationset.yaml"
    other = "https://charts.example/other.git"
    appset.write_text(
        appset.read_text().replace(
            "          ref: values\n",
            f"          ref: values\n        - repoURL: {other}\n          targetRevision: v1\n"
            "          path: extra\n",
        )
    )
    git(repo, "commit", "--quiet", "-am", "Add another source")

    assert nepse_gitops(repo, "init", "--repo-url", OWN).code == 0
    assert _repo_urls(repo) == {OWN, other}


def test_init_twice_changes_nothing_the_second_time(repo: Path, nepse_gitops) -> None:
    assert nepse_gitops(repo, "init", "--repo-url", OWN).code == 0
    before = snapshot(repo)

    again = nepse_gitops(repo, "init", "--repo-url", OWN)

    assert again.code == 1
    assert "nothing to init" in again.err
    assert snapshot(repo) == before


def test_init_dry_run_prints_the_diff_and_writes_nothing(repo: Path, nepse_gitops) -> None:
    before = snapshot(repo)

    result = nepse_gitops(repo, "init", "--repo-url", OWN, "--dry-run")

    assert result.code == 0, result.err
    assert f"+        repoURL: {OWN}" in result.out
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--repo-url", "not a url", "--repo-url 'not a url'"),
        ("--repo-url", "file:///srv/git/repo.git", "not a git URL"),
        ("--repo-url", "https://host/repo.git\nfoo: bar", "--repo-url"),
        ("--model-url-base", "ftp://models.example", "--model-url-base"),
        ("--model-url-base", "https://models.example/", "trailing '/'"),
    ],
)
def test_init_refuses_bad_values_naming_the_flag(
    repo: Path, nepse_gitops, flag: str, value: str, named: str
) -> None:
    before = snapshot(repo)
    args = ["--repo-url", OWN] if flag != "--repo-url" else []
    result = nepse_gitops(repo, "init", *args, flag, value)

    assert result.code == 2, result.out
    assert named in result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before


def test_init_refuses_an_image_repository_the_chart_rejects(repo: Path, nepse_gitops) -> None:
    before = snapshot(repo)

    result = nepse_gitops(repo, "init", "--repo-url", OWN, "--image-repository", "Bad Repo")

    assert result.code == 1
    assert "image.repository" in result.err or "image/repository" in result.err, result.err
    assert snapshot(repo) == before
