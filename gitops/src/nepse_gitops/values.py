"""An environment's values as helm merges them: the chart's defaults, then each value file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GitopsError
from .yamldoc import load_plain, load_plain_text

if TYPE_CHECKING:  # for annotations only: environments.py imports this module
    from .environments import Environment

# The chart's slots and the fields of each (its values contract).
SLOT_NAMES = ("stable", "canary", "shadow", "blue", "green")
SLOT_FIELDS = ("imageTag", "modelVersion", "modelSha256")

# Used only when the chart's values.yaml cannot be read (the contract's defaults).
CONTRACT_DEFAULTS: dict[str, Any] = {
    "slots": {name: dict.fromkeys(SLOT_FIELDS, "") for name in SLOT_NAMES},
    "rollout": {
        "strategy": "rolling",
        "canary": {"weight": 0},
        "blueGreen": {"activeColor": "blue"},
        "shadow": {"percent": 0},
    },
    "traffic": {"provider": "none"},
    "quarantine": {"imageTags": [], "modelVersions": []},
}


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's merge of value files: mappings merge key by key, everything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def chart_defaults(env: Environment) -> dict[str, Any]:
    path = env.chart_dir / "values.yaml"
    if not path.is_file():
        return copy.deepcopy(CONTRACT_DEFAULTS)
    data = load_plain(path, env.rel(path)) or {}
    merged: dict[str, Any] = deep_merge(CONTRACT_DEFAULTS, data)
    return merged


def merged_values(env: Environment, overrides: dict[Path, str] | None = None) -> dict[str, Any]:
    """Chart defaults merged with the environment's value files, as helm would merge them."""
    overrides = overrides or {}
    values = chart_defaults(env)
    for path in env.value_files():
        if path in overrides:
            data = load_plain_text(overrides[path], env.rel(path))
        elif path.is_file():
            data = load_plain(path, env.rel(path))
        else:
            continue
        if data:
            if not isinstance(data, dict):
                raise GitopsError(f"{env.rel(path)}: expected a mapping at the top level")
            values = deep_merge(values, data)
    return values


def base_strategy(env: Environment) -> str:
    """The strategy an environment returns to when release.yaml does not override it."""
    values = chart_defaults(env)
    data = load_plain(env.values_path, env.rel(env.values_path)) or {}
    values = deep_merge(values, data)
    return str((values.get("rollout") or {}).get("strategy", "rolling"))
