"""helm-unittest under Helm 3 and Helm 4, and `ct lint` (which runs helm-unittest too)."""

from __future__ import annotations

import re

import pytest
from chartkit import CHART, REPO_ROOT, run, tool


def test_helm_unittest_suites_pass(helm: str) -> None:
    result = run([tool(helm), "unittest", "--file", "tests/*_test.yaml", CHART])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = re.search(r"Tests:\s+(\d+) passed, (\d+) total", output)
    assert summary and summary.group(1) == summary.group(2), output
    print(f"{helm} unittest: {summary.group(0)}")


@pytest.mark.slow
def test_ct_lint_passes() -> None:
    result = run([tool("ct"), "lint", "--config", REPO_ROOT / "ct.yaml"], timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All charts linted successfully" in output, output
