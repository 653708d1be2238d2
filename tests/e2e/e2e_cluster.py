"""Helpers for the end-to-end tests: run kubectl and helm against the local control plane.

Tools come from .tools/ (scripts/install-tools.sh) with Helm's plugin, data, cache and config
folders inside .tools, the same environment scripts/tools-env.sh sets up for a shell.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("NEPSE_TOOLS_DIR", ROOT / ".tools"))
BIN = TOOLS / "bin"
CRDS = TOOLS / "crds"
CRD_PROJECTS = (
    "istio",
    "gateway-api",
    "knative-serving",
    "prometheus-operator",
    "argo-cd",
    "argo-rollouts",
)
REQUIRED_TOOLS = ("kubectl", "helm3", "helm4", "kwokctl", "kube-apiserver", "etcd")


class CommandError(AssertionError):
    """A tool exited non-zero; the message carries the command and its output."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        cmd = " ".join(map(str, result.args))
        super().__init__(
            f"`{cmd}` exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )


def run_tool(
    args: Sequence[str | Path],
    env: dict[str, str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise CommandError(result)
    return result


def tools_env(kubeconfig: Path | None = None) -> dict[str, str]:
    """The environment every tool call gets: .tools/bin first, Helm's folders in .tools."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), str(ROOT / ".venv" / "bin"), env.get("PATH", "")])
    env["HELM_PLUGINS"] = str(TOOLS / "helm" / "plugins")
    env["HELM_DATA_HOME"] = str(TOOLS / "helm" / "data")
    env["HELM_CONFIG_HOME"] = str(TOOLS / "helm" / "config")
    env["HELM_CACHE_HOME"] = str(TOOLS / "helm" / "cache")
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env


@dataclass
class Cluster:
    """A running control plane and the tools to drive it.

    ``kubectl``/``helm`` raise :class:`CommandError` (with the output) on failure unless
    ``check=False``; ``helm`` is Helm 4, ``helm3`` Helm 3, both with the plugins in .tools.
    """

    kubeconfig: Path
    owned: bool
    state_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    startup_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.env = tools_env(self.kubeconfig)

    def run(self, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_tool(args, self.env, **kwargs)

    def kubectl(self, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_tool([BIN / "kubectl", *args], self.env, **kwargs)

    def kubectl_json(self, *args: str | Path, **kwargs: Any) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json", **kwargs).stdout)

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input=manifest)

    def helm(self, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_tool([BIN / "helm4", *args], self.env, **kwargs)

    def helm3(self, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_tool([BIN / "helm3", *args], self.env, **kwargs)

    def wait_until(
        self, what: str, predicate: Any, timeout: float = 60, interval: float = 0.5
    ) -> Any:
        """Poll ``predicate()`` until it returns a truthy value; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")
