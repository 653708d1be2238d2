"""Fixtures for the GitOps tests: temporary git repositories holding a copy of the repository's
environments/, argocd/ and chart, real helm, and the `nepse-gitops` command line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nepse_gitops import cli
from nepse_gitops.environments import Environment
from nepse_gitops.render import find_helm, render_env
from testkit.gitrepos import GIT_ENV, commit_all, copy_repository, git
from testkit.paths import REPO_ROOT
from testkit.redis_server import RedisServer

# Versions that appear in the environment files (see environments/*/release.yaml).
V1 = (
    "1d3f5e7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e",
    "2026.11.12-8c41d07",
    "5f0c6e1d2b8a4c7e9f3a1d5b7c9e2f4a6b8d0c1e3f5a7b9c2d4e6f8a0b1c3d5e",
)
V2 = (
    "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
    "2026.11.24-e93b5a2",
    "c2e4a6b8d0f1e3c5a7b9d2f4e6a8c0b1d3f5e7a9c1b2d4f6e8a0c3b5d7f9e1a2",
)
V3 = (
    "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
    "2026.11.26-1f2e3d4",
    "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c",
)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server holding the prediction log that quarantine and the gate mark."""
    server = RedisServer(tmp_path)
    yield server
    server.kill()


@pytest.fixture(scope="session")
def helm() -> str:
    try:
        return find_helm(REPO_ROOT)
    except Exception as exc:  # a clear failure, never a silent skip
        pytest.fail(f"{exc} (run `make tools` to install the pinned helm)")


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, helm: str) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NEPSE_HELM", helm)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit holding a copy of the GitOps files and the chart."""
    root = copy_repository(tmp_path / "repo")
    commit_all(root, "Lay out the environments")
    return root


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def nepse_gitops(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the command line in-process against a repository: nepse_gitops(repo, 'status')."""

    def run(repo: Path, *args: str) -> Result:
        capsys.readouterr()
        code = cli.main(["--repo", str(repo), *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@dataclass
class Snapshot:
    head: str
    branch: str
    branches: str
    status: str
    files: dict[str, bytes]


def snapshot(repo: Path) -> Snapshot:
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted((repo / "environments").rglob("*"))
        if p.is_file()
    }
    return Snapshot(
        head=git(repo, "rev-parse", "HEAD").strip(),
        branch=git(repo, "branch", "--show-current").strip(),
        branches=git(repo, "branch", "--list"),
        status=git(repo, "status", "--porcelain", "--untracked-files=all"),
        files=files,
    )


def rendered(repo: Path, env: str, helm: str) -> str:
    return render_env(Environment(repo, env), helm=helm).text


def commit_file(repo: Path, rel: str, text: str, message: str) -> None:
    (repo / rel).write_text(text)
    git(repo, "commit", "--quiet", "-am", message)


def edit_prod_policy(repo: Path, old: str, new: str, message: str) -> None:
    """Commit prod's policy.yaml with ``old`` (which must be there) replaced by ``new``."""
    rel = "environments/prod/policy.yaml"
    text = (repo / rel).read_text()
    assert old in text, f"{rel} has no {old!r}"
    commit_file(repo, rel, text.replace(old, new), message)


def log_subjects(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()
