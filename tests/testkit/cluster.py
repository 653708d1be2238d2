"""A local Kubernetes control plane for tests: etcd, kube-apiserver, controller-manager,
scheduler and kwok nodes started by scripts/cluster-up.sh in a temporary folder, with the CRDs
of every project the chart renders for installed, and the tools to drive it.

Tools come from .tools/ (scripts/install-tools.sh) with Helm's plugin, data, cache and config
folders inside .tools, the same environment scripts/tools-env.sh sets up for a shell.
Used by the e2e tier (tests/e2e/conftest.py) and the chart tier's server-side dry runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testkit.paths import REPO_ROOT

ROOT = REPO_ROOT
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


# --- Starting and stopping a local control plane ------------------------------------------


def _reusable_kubeconfig() -> Path | None:
    explicit = os.environ.get("NEPSE_E2E_KUBECONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            pytest.fail(f"NEPSE_E2E_KUBECONFIG={explicit}: no such file")
        return path
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig and ":" not in kubeconfig:
        path = Path(kubeconfig)
        # Only a cluster made by scripts/cluster-up.sh, which writes kwokctl.yaml beside it.
        if path.is_file() and (path.parent / "kwokctl.yaml").is_file():
            return path
    return None


def _check_tools() -> None:
    missing = [t for t in REQUIRED_TOOLS if not (BIN / t).exists()]
    missing += [f"crds/{p}" for p in CRD_PROJECTS if not (CRDS / p).is_dir()]
    if missing:
        pytest.fail(
            f"missing under {TOOLS}: {', '.join(missing)}; run scripts/install-tools.sh",
            pytrace=False,
        )


def _install_crds(cluster: Cluster) -> None:
    files = [arg for project in CRD_PROJECTS for arg in ("-f", str(CRDS / project))]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *files, timeout=180)
    # `kubectl wait` fails at once on a CRD the API server has not given a status yet
    # (".status.conditions accessor error"); that one is waited out.
    deadline = time.monotonic() + 120
    while True:
        done = cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
            timeout=90,
            check=False,
        )
        if done.returncode == 0:
            return
        if "accessor error" not in done.stderr or time.monotonic() > deadline:
            raise CommandError(done)
        time.sleep(1)


STATE_PREFIX = "nepse-e2e-"


def _cluster_env(state: Path) -> dict[str, str]:
    """Environment for scripts/cluster-{up,down}.sh of the cluster kept in ``state``."""
    env = tools_env()
    env["NEPSE_CLUSTER_DIR"] = str(state / "cluster")
    env["NEPSE_CLUSTER_NAME"] = "e2e-" + state.name.removeprefix(STATE_PREFIX).split("-")[0]
    return env


def _remove_abandoned_clusters(report: Callable[[str], None]) -> None:
    """Stop clusters left behind by test sessions that were killed before their teardown."""
    for state in Path(tempfile.gettempdir()).glob(f"{STATE_PREFIX}*-*"):
        pid = state.name.removeprefix(STATE_PREFIX).split("-")[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        report(f"removing the cluster abandoned by pid {pid} in {state}")
        run_tool(
            [ROOT / "scripts" / "cluster-down.sh"], _cluster_env(state), check=False, timeout=120
        )
        shutil.rmtree(state, ignore_errors=True)


def control_plane(report: Callable[[str], None]) -> Iterator[Cluster]:
    """Yield a running control plane with the CRDs installed; stop it afterwards.

    A cluster named by ``NEPSE_E2E_KUBECONFIG``, or a ``KUBECONFIG`` written by
    scripts/cluster-up.sh, is reused and left running; otherwise one is started in a temporary
    folder and torn down when the generator is closed, also after a failure. Clusters left by
    killed sessions are removed first. ``report`` receives progress lines.
    """
    _check_tools()
    reuse = _reusable_kubeconfig()
    if reuse is not None:
        c = Cluster(kubeconfig=reuse, owned=False)
        c.kubectl("get", "--raw", "/readyz", timeout=30)
        _install_crds(c)
        report(f"reusing the cluster of {reuse}")
        yield c
        return

    _remove_abandoned_clusters(report)
    state = Path(tempfile.mkdtemp(prefix=f"{STATE_PREFIX}{os.getpid()}-"))
    env = _cluster_env(state)
    try:
        started = time.monotonic()
        result = run_tool([ROOT / "scripts" / "cluster-up.sh"], env, check=False, timeout=400)
        if result.returncode != 0:
            pytest.fail(f"scripts/cluster-up.sh failed:\n{result.stderr}", pytrace=False)
        c = Cluster(kubeconfig=Path(result.stdout.strip().splitlines()[-1]), owned=True)
        c.state_dir = state
        up = time.monotonic() - started
        _install_crds(c)
        c.startup_seconds = time.monotonic() - started
        report(f"control plane up in {up:.1f}s, CRDs established after {c.startup_seconds:.1f}s")
        yield c
    finally:
        result = run_tool([ROOT / "scripts" / "cluster-down.sh"], env, check=False, timeout=120)
        if result.returncode != 0:
            report(f"cluster-down failed:\n{result.stderr}")
        shutil.rmtree(state, ignore_errors=True)
