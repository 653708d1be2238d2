"""The environments folder: where each environment's files live.

Layout (relative to the repository root)::

    charts/nepse-predictor/             the chart, its values.yaml holds the defaults
    environments/quarantine.yaml        versions no environment may run (passed to every render)
    environments/<env>/values.yaml      what differs from the chart defaults for <env>
    environments/<env>/release.yaml     only what a promotion moves: slots and moving rollout keys
    environments/<env>/policy.yaml      how releases enter <env>, the release plan and the gate's
                                        thresholds (the chart's AnalysisTemplate reads the gate's)

Helm is called with ``-f values.yaml -f release.yaml -f policy.yaml -f ../quarantine.yaml``;
the quarantine file comes last so that no environment can override the list.

What the files say is read elsewhere: yamldoc.py (the files as YAML), values.py (merged as
helm merges them), state.py (what the environment runs) and policy.py (how releases enter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GitopsError

# The router tests read merged_values from here, where it was before values.py held it.
from .values import merged_values as merged_values
from .yamldoc import YamlDoc, load_plain

CHART_DIR = Path("charts/nepse-predictor")
ENVIRONMENTS_DIR = Path("environments")
QUARANTINE_FILE = ENVIRONMENTS_DIR / "quarantine.yaml"
RELEASE_NAME = "nepse-predictor"


def namespace_for(env: str) -> str:
    return f"nepse-{env}"


def list_environments(root: Path) -> list[str]:
    base = root / ENVIRONMENTS_DIR
    if not base.is_dir():
        return []
    return sorted(
        p.name
        for p in base.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "values.yaml").exists()
    )


@dataclass
class Environment:
    root: Path
    name: str

    @property
    def dir(self) -> Path:
        return self.root / ENVIRONMENTS_DIR / self.name

    @property
    def values_path(self) -> Path:
        return self.dir / "values.yaml"

    @property
    def release_path(self) -> Path:
        return self.dir / "release.yaml"

    @property
    def chart_dir(self) -> Path:
        return self.root / CHART_DIR

    @property
    def policy_path(self) -> Path:
        return self.dir / "policy.yaml"

    def policy(self) -> dict[str, Any]:
        if not self.policy_path.is_file():
            return {}
        data = load_plain(self.policy_path, self.rel(self.policy_path)) or {}
        if not isinstance(data, dict):
            raise GitopsError(f"{self.rel(self.policy_path)}: expected a mapping at the top level")
        return data

    @property
    def quarantine_path(self) -> Path:
        return self.root / QUARANTINE_FILE

    @property
    def namespace(self) -> str:
        return namespace_for(self.name)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def value_files(self) -> list[Path]:
        """The value files in the order helm and Argo CD receive them."""
        policy = [self.policy_path] if self.policy_path.is_file() else []
        return [self.values_path, self.release_path, *policy, self.quarantine_path]

    def release_doc(self) -> YamlDoc:
        return YamlDoc.load(self.release_path, self.rel(self.release_path))


def load_environment(root: Path, name: str) -> Environment:
    env = Environment(root, name)
    if not env.dir.is_dir():
        known = ", ".join(list_environments(root)) or "none"
        raise GitopsError(
            f"unknown environment {name!r}: {env.rel(env.dir)}/ does not exist (known: {known})"
        )
    for path in (env.values_path, env.release_path):
        if not path.is_file():
            raise GitopsError(f"environment {name!r} is incomplete: {env.rel(path)} is missing")
    return env
