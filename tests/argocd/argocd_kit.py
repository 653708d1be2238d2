"""Driving a real Argo CD from a test: its CLI and Applications, and the git workspace whose
pushes it syncs.

``ArgoCD`` is what scripts/argocd-up.sh started (its env file says where); ``Workspace`` is a
clone of the repository Argo CD syncs from, the place the tests commit and push, with
``nepse-gitops`` pointed at it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nepse_gitops.environments import namespace_for
from testkit.cluster import BIN, Cluster, run_tool
from testkit.release import rollout_complete

NAMESPACE = "argocd"
ENVIRONMENTS = ("dev", "staging", "prod")
NEPSE_GITOPS = Path(sys.executable).parent / "nepse-gitops"
# Argo CD's git polling in this tier (its defaults: the controller reads git every 180 s, and
# the repo-server keeps what a branch points at for 3 minutes; a poll inside that time sees
# the old commit). Every push is followed by a refresh, as a webhook would do, except in the
# one scenario that measures polling alone.
APP_RESYNC_SECONDS = 10
REVISION_CACHE = "10s"


def app_name(env: str) -> str:
    return f"nepse-predictor-{env}"


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = value
    return values


@dataclass
class ArgoCD:
    cluster: Cluster
    server: str
    git_url: str

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tool(
            [BIN / "argocd", *args, "--server", self.server, "--plaintext"],
            self.cluster.env,
            check=check,
            timeout=120,
        )

    def application(self, name: str) -> dict[str, Any]:
        return self.cluster.kubectl_json("-n", NAMESPACE, "get", "application", name)

    def applications(self) -> dict[str, dict[str, Any]]:
        items = self.cluster.kubectl_json("-n", NAMESPACE, "get", "applications")["items"]
        return {a["metadata"]["name"]: a for a in items}

    def refresh(self, *names: str) -> None:
        """What a git webhook does after a push: ask for a refresh now."""
        for name in names:
            self.cluster.kubectl(
                "-n", NAMESPACE, "annotate", "application", name,
                "argocd.argoproj.io/refresh=normal", "--overwrite",
            )  # fmt: skip

    def deployments(self, env: str) -> dict[str, dict[str, Any]]:
        items = self.cluster.kubectl_json("-n", namespace_for(env), "get", "deployments")["items"]
        return {d["metadata"]["name"]: d for d in items}


def synced_at(app: dict[str, Any], sha: str | None = None) -> bool:
    """Synced (to ``sha`` when given) and Healthy, with no sync operation still running."""
    status = app.get("status", {})
    sync = status.get("sync", {})
    revisions = sync.get("revisions") or [sync.get("revision")]
    operation = status.get("operationState", {}).get("phase")
    return (
        sync.get("status") == "Synced"
        and status.get("health", {}).get("status") == "Healthy"
        and (sha is None or sha in revisions)
        and operation not in ("Running", "Terminating")
    )


def all_available(deployments: dict[str, dict[str, Any]]) -> bool:
    return bool(deployments) and all(rollout_complete(d) for d in deployments.values())


def wait_seconds(
    what: str,
    done: Callable[[], Any],
    since: float,
    timeout: float,
    describe: Callable[[], Any] | None = None,
) -> float:
    """Poll ``done`` until truthy; the seconds from ``since`` (a monotonic time) to then.
    On a timeout the failure shows ``describe()`` (default: the last value of ``done``)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = done()
        if last:
            return time.monotonic() - since
        time.sleep(0.25)
    seen = describe() if describe is not None else last
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {seen!r})")


@dataclass
class Workspace:
    """A clone of the repository Argo CD syncs; commits land on main and are pushed there."""

    root: Path
    env: dict[str, str]

    def git(self, *args: str) -> str:
        return run_tool(["git", "-C", self.root, *args], self.env).stdout.strip()

    def gitops(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tool(
            [NEPSE_GITOPS, "--repo", self.root, "--helm", BIN / "helm", *args],
            self.env,
            check=check,
            timeout=300,
        )

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def push(self) -> float:
        """Push main; the monotonic time right after the push returned."""
        self.git("push", "--quiet", "origin", "HEAD:main")
        return time.monotonic()

    def commit_all(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.head()


def pod_template(deployment: dict[str, Any]) -> str:
    """A Deployment's pod template, as canonical JSON for a field-by-field comparison."""
    return json.dumps(deployment["spec"]["template"], sort_keys=True)
