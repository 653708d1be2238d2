"""Git repositories the tests make: a copy of the GitOps files and the chart in a fresh
repository, and git run with a fixed identity and no user or system configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from testkit.paths import REPO_ROOT

# What `nepse-gitops` reads and renders: the environments, the Argo CD files and the chart.
COPIED = ("environments", "argocd", "charts/nepse-predictor")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Release Engineer",
    "GIT_AUTHOR_EMAIL": "release@nepse.example",
    "GIT_COMMITTER_NAME": "Release Engineer",
    "GIT_COMMITTER_EMAIL": "release@nepse.example",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


def copy_repository(root: Path) -> Path:
    """``root``: a new repository holding a copy of COPIED, not yet committed."""
    for rel in COPIED:
        src = REPO_ROOT / rel
        if not src.exists():
            raise AssertionError(f"{rel} is missing from the repository")
        shutil.copytree(src, root / rel)
    git(root, "init", "--quiet", "--initial-branch=main")
    return root


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()
