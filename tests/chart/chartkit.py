"""Running the real chart tools (.tools/bin) against charts/nepse-predictor."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from testkit.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "nepse-predictor"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
TOOLS = Path(os.environ.get("NEPSE_TOOLS_DIR", REPO_ROOT / ".tools"))
BIN = TOOLS / "bin"
HELMS = ("helm3", "helm4")
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion). Helm 3.17 would otherwise
# assume 1.32, which the chart refuses; Helm 4 would assume a newer one than clusters may run.
KUBE_VERSION = "1.34.0"


class MissingTool(RuntimeError):
    pass


def tool(name: str) -> Path:
    """Path of a pinned tool in .tools/bin; a missing one is an error that says how to get it."""
    path = BIN / name
    if not os.access(path, os.X_OK):
        raise MissingTool(
            f"{path} is missing: run `make tools` (scripts/install-tools.sh) to install the "
            "pinned chart tools"
        )
    return path


def tool_env() -> dict[str, str]:
    """The environment for chart tools: .tools/bin and the venv's yamllint/yamale first."""
    env = dict(os.environ)
    venv_bin = REPO_ROOT / ".venv" / "bin"
    env["PATH"] = os.pathsep.join([str(BIN), str(venv_bin), env.get("PATH", "")])
    return env


def run(args: list[str | Path], *, check: bool = False, timeout: float = 300, **kwargs):
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        env=kwargs.pop("env", tool_env()),
        cwd=kwargs.pop("cwd", REPO_ROOT),
        **kwargs,
    )


def helm_args(values_files: list[Path] = (), sets: dict[str, str] | None = None) -> list[str]:
    args: list[str] = []
    for f in values_files:
        args += ["-f", str(f)]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def template(
    helm: str,
    values_files: list[Path] = (),
    sets: dict[str, str] | None = None,
    *,
    namespace: str = "nepse-test",
    release: str = "nepse-predictor",
    extra: list[str] = (),
) -> subprocess.CompletedProcess:
    return run(
        [
            tool(helm),
            "template",
            release,
            CHART,
            "--namespace",
            namespace,
            "--kube-version",
            KUBE_VERSION,
            *helm_args(values_files, sets),
            *extra,
        ]
    )


def render(
    helm: str, values_files: list[Path] = (), sets: dict[str, str] | None = None, **kwargs
) -> list[dict]:
    """Rendered documents (non-empty) of a successful `helm template`."""
    result = template(helm, values_files, sets, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{helm} template failed:\n{result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]
