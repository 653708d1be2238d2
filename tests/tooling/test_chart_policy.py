"""scripts/chart_policy.py: kube-score and checkov over every rendered ci file and environment.
`make lint` runs it with the committed skip list; here a skip is taken out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from testkit.paths import REPO_ROOT

SKIPS = REPO_ROOT / "tests" / "tooling" / "chart-policy-skips.yaml"


def policy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(REPO_ROOT / "scripts/with-tools.sh"),
            sys.executable,
            "scripts/chart_policy.py",
            *args,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_every_skip_says_why() -> None:
    skips = yaml.safe_load(SKIPS.read_text())
    assert set(skips) == {"kube-score", "kube-score-argo-rollouts", "checkov"}
    for tool, checks in skips.items():
        for check, reason in checks.items():
            assert isinstance(reason, str) and len(reason) > 40, f"{tool} {check}: no reason"


def test_a_finding_that_is_not_skipped_fails_the_lint_naming_it(tmp_path: Path) -> None:
    skips = yaml.safe_load(SKIPS.read_text())
    del skips["kube-score"]["deployment-replicas"]
    del skips["checkov"]["CKV_K8S_43"]
    narrower = tmp_path / "skips.yaml"
    narrower.write_text(yaml.safe_dump(skips))
    result = policy("--skips", str(narrower))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Deployment few replicas" in result.stdout
    assert "CKV_K8S_43" in result.stdout


def test_the_rollouts_skips_apply_to_rollout_renders_only(tmp_path: Path) -> None:
    skips = yaml.safe_load(SKIPS.read_text())
    del skips["kube-score-argo-rollouts"]["service-targets-pod"]
    narrower = tmp_path / "skips.yaml"
    narrower.write_text(yaml.safe_dump(skips))
    result = policy("--skips", str(narrower))
    assert result.returncode == 1, result.stdout + result.stderr
    flagged = [line for line in result.stdout.splitlines() if "selector does not match" in line]
    rollouts = ("/nepse-ci-18 ", "/nepse-ci-19 ", "/nepse-ci-20 ")  # the argorollouts ci files
    assert flagged and all(any(ns in line for ns in rollouts) for line in flagged), flagged
