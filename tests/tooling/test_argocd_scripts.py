"""scripts/argocd-up.sh and argocd-down.sh refuse bad settings before starting anything, and
argocd-down.sh is harmless when nothing is up."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testkit.paths import REPO_ROOT


def _run(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REPO_ROOT / "scripts" / script],
        env={**os.environ, "NEPSE_ARGOCD_DIR": str(tmp_path / "argocd"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("NEPSE_ARGOCD_APP_RESYNC", "3m"),
        ("NEPSE_ARGOCD_APP_RESYNC", "0"),
        ("NEPSE_ARGOCD_APPSET_REQUEUE", "soon"),
        ("NEPSE_ARGOCD_REVISION_CACHE", "20"),
    ],
)
def test_argocd_up_refuses_a_bad_setting_naming_it(
    tmp_path: Path, setting: str, value: str
) -> None:
    result = _run("argocd-up.sh", tmp_path, **{setting: value})

    assert result.returncode == 1
    assert setting in result.stderr and repr(value) in result.stderr.replace('"', "'")
    assert not (tmp_path / "argocd").exists()


def test_argocd_up_refuses_a_cluster_that_does_not_answer(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"

    result = _run("argocd-up.sh", tmp_path, NEPSE_ARGOCD_KUBECONFIG=str(missing))

    assert result.returncode == 1
    assert f"NEPSE_ARGOCD_KUBECONFIG={missing}: the cluster does not answer" in result.stderr
    assert not (tmp_path / "argocd").exists()


def test_argocd_down_with_nothing_up_does_nothing(tmp_path: Path) -> None:
    result = _run("argocd-down.sh", tmp_path)

    assert result.returncode == 0
    assert "nothing to stop" in result.stderr
