"""Helpers for the end-to-end tests: the chart's releases on the local control plane.

The control plane itself (Cluster, run_tool, tools_env, ...) lives in testkit.cluster, shared
with the chart tier; it is re-exported here for the tests that import it from this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit.cluster import (
    BIN,
    CRD_PROJECTS,
    CRDS,
    REQUIRED_TOOLS,
    ROOT,
    TOOLS,
    Cluster,
    CommandError,
    run_tool,
    tools_env,
)
from testkit.release import CHART, Release, parse_manifest, rollout_complete

__all__ = [
    "BIN",
    "CHART",
    "CI_VALUES",
    "CRDS",
    "CRD_PROJECTS",
    "ENVIRONMENTS",
    "REQUIRED_TOOLS",
    "ROOT",
    "TOOLS",
    "Cluster",
    "CommandError",
    "Release",
    "container",
    "env_of",
    "environment_value_files",
    "missing_from",
    "parse_manifest",
    "rollout_complete",
    "run_tool",
    "tools_env",
    "value_args",
]

# --- The chart and its releases ---------------------------------------------------------------

CI_VALUES = tuple(sorted((CHART / "ci").glob("*-values.yaml")))
ENVIRONMENTS = tuple(
    sorted(p.name for p in (ROOT / "environments").iterdir() if (p / "values.yaml").is_file())
)


def environment_value_files(env: str) -> list[Path]:
    """The value files Argo CD passes for one environment, in its order."""
    folder = ROOT / "environments" / env
    return [
        folder / "values.yaml",
        folder / "release.yaml",
        folder / "policy.yaml",
        ROOT / "environments" / "quarantine.yaml",
    ]


def value_args(*files: Path) -> list[str]:
    return [arg for f in files for arg in ("-f", str(f))]


def missing_from(rendered: Any, stored: Any, path: str = "") -> list[str]:
    """Where ``stored`` lacks or changes something ``rendered`` has (API defaults may add more).

    Lists must have the same length and match item by item.
    """
    if isinstance(rendered, dict):
        if not isinstance(stored, dict):
            return [f"{path or '.'}: rendered an object, stored {stored!r}"]
        problems: list[str] = []
        for key, value in rendered.items():
            if key not in stored:
                problems.append(f"{path}.{key}: rendered {value!r}, not stored")
            else:
                problems += missing_from(value, stored[key], f"{path}.{key}")
        return problems
    if isinstance(rendered, list):
        if not isinstance(stored, list) or len(stored) != len(rendered):
            return [f"{path}: rendered {rendered!r}, stored {stored!r}"]
        return [
            p
            for i, (r, s) in enumerate(zip(rendered, stored, strict=True))
            for p in missing_from(r, s, f"{path}[{i}]")
        ]
    if rendered != stored:
        return [f"{path}: rendered {rendered!r}, stored {stored!r}"]
    return []


def container(template: dict[str, Any], name: str, *, init: bool = False) -> dict[str, Any]:
    containers = template["spec"]["initContainers" if init else "containers"]
    return next(c for c in containers if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}
