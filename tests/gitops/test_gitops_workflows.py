"""The GitHub Actions workflows: actionlint-clean and every action pinned by commit SHA."""

from __future__ import annotations

import re
import subprocess

import pytest
from ruamel.yaml import YAML

from testkit.cluster import TOOLS
from testkit.paths import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github/workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def test_the_four_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["advance.yml", "ci.yml", "promote.yml", "release.yml"]


def test_workflows_pass_actionlint() -> None:
    actionlint = TOOLS / "bin/actionlint"
    if not actionlint.exists():
        pytest.fail("actionlint is missing from .tools/bin: run `make tools`")
    proc = subprocess.run(
        [str(actionlint), *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_full_commit_sha_with_its_version(path) -> None:
    text = path.read_text()
    uses = re.findall(r"uses:\s*(\S+)(.*)", text)
    assert uses, f"{path.name} uses no action"
    for ref, rest in uses:
        assert PINNED.match(ref), f"{path.name}: {ref} is not pinned by a 40-hex commit SHA"
        assert re.search(r"#\s*v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} lacks '# vX.Y.Z'"


def test_ci_runs_what_ci_run_runs() -> None:
    ci = YAML(typ="safe").load((REPO_ROOT / ".github/workflows/ci.yml").read_text())
    steps = ci["jobs"]["test"]["steps"]
    assert any(s.get("run", "").strip() == ".ci/run" for s in steps)
    assert "make test" in (REPO_ROOT / ".ci/run").read_text()


def test_workflows_grant_least_privilege_by_default() -> None:
    for path in WORKFLOWS:
        doc = YAML(typ="safe").load(path.read_text())
        assert doc["permissions"] == {"contents": "read"}, path.name
