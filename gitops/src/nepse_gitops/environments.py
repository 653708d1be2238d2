"""The environments folder: where each environment's files live and what they say.

Layout (relative to the repository root)::

    charts/nepse-predictor/             the chart, its values.yaml holds the defaults
    environments/quarantine.yaml        versions no environment may run (passed to every render)
    environments/<env>/values.yaml      what differs from the chart defaults for <env>
    environments/<env>/release.yaml     only what a promotion moves: slots and moving rollout keys
    environments/<env>/policy.yaml      how releases enter <env>, the release plan and the gate's
                                        thresholds (the chart's AnalysisTemplate reads the gate's)

Helm is called with ``-f values.yaml -f release.yaml -f policy.yaml -f ../quarantine.yaml``;
the quarantine file comes last so that no environment can override the list.
"""

from __future__ import annotations

import copy
import difflib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from .errors import GitopsError

CHART_DIR = Path("charts/nepse-predictor")
ENVIRONMENTS_DIR = Path("environments")
QUARANTINE_FILE = ENVIRONMENTS_DIR / "quarantine.yaml"
RELEASE_NAME = "nepse-predictor"
SLOT_NAMES = ("stable", "canary", "shadow", "blue", "green")
SLOT_FIELDS = ("imageTag", "modelVersion", "modelSha256")
STRATEGIES = ("rolling", "canary", "blueGreen", "shadow")
COLOURS = ("blue", "green")

# Used only when the chart's values.yaml cannot be read (the contract's defaults).
CONTRACT_DEFAULTS: dict[str, Any] = {
    "slots": {name: {"imageTag": "", "modelVersion": "", "modelSha256": ""} for name in SLOT_NAMES},
    "rollout": {
        "strategy": "rolling",
        "canary": {"weight": 0},
        "blueGreen": {"activeColor": "blue"},
        "shadow": {"percent": 0},
    },
    "traffic": {"provider": "none"},
    "quarantine": {"imageTags": [], "modelVersions": []},
}


def namespace_for(env: str) -> str:
    return f"nepse-{env}"


# --------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """An image tag and a model version that always move together (one slot)."""

    image_tag: str
    model_version: str
    model_sha256: str = ""

    @classmethod
    def from_slot(cls, slot: Any) -> Version:
        slot = slot or {}
        return cls(
            image_tag=str(slot.get("imageTag") or ""),
            model_version=str(slot.get("modelVersion") or ""),
            model_sha256=str(slot.get("modelSha256") or ""),
        )

    @property
    def empty(self) -> bool:
        return not self.image_tag and not self.model_version

    def same(self, other: Version) -> bool:
        return self.image_tag == other.image_tag and self.model_version == other.model_version

    def fields(self) -> dict[str, str]:
        return {
            "imageTag": self.image_tag,
            "modelVersion": self.model_version,
            "modelSha256": self.model_sha256,
        }

    def __str__(self) -> str:
        if self.empty:
            return "(empty)"
        return f"{self.image_tag}/{self.model_version}"


# --------------------------------------------------------------------------------------------
# Round-trip YAML documents
# --------------------------------------------------------------------------------------------


def make_yaml() -> YAML:
    """The one YAML configuration used to read and write environment files."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _dump(yaml: YAML, data: Any) -> str:
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


MISSING = object()


@dataclass
class Change:
    path: tuple[str, ...]
    old: Any
    new: Any

    def describe(self) -> str:
        key = ".".join(self.path)
        old = "(absent)" if self.old is MISSING else repr(_plain(self.old))
        new = "(removed)" if self.new is MISSING else repr(_plain(self.new))
        return f"{key}: {old} -> {new}"


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    return value


class YamlDoc:
    """A YAML file edited in place: comments, key order and quoting survive; only set keys move.

    Saving refuses when the file is not in the layout the writer produces (for example another
    indentation), because then unrelated lines would change and a revert would not be exact.
    """

    def __init__(self, path: Path, text: str, display: str | None = None) -> None:
        self.path = path
        self.display = display or str(path)
        self.original = text
        self.yaml = make_yaml()
        try:
            self.data = self.yaml.load(text)
        except YAMLError as exc:
            raise GitopsError(f"{self.display}: not valid YAML: {exc}") from exc
        if self.data is None:
            self.data = CommentedMap()
        if not isinstance(self.data, dict):
            raise GitopsError(f"{self.display}: expected a mapping at the top level")
        self.changes: list[Change] = []

    @classmethod
    def load(cls, path: Path, display: str | None = None) -> YamlDoc:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise GitopsError(f"{display or path}: file not found") from exc
        return cls(path, text, display)

    # -- reading ---------------------------------------------------------------------------
    def get(self, keys: Iterable[str], default: Any = MISSING) -> Any:
        node: Any = self.data
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    # -- writing ---------------------------------------------------------------------------
    def _parent(self, keys: tuple[str, ...], create: bool) -> CommentedMap:
        node: Any = self.data
        for i, key in enumerate(keys[:-1]):
            if key not in node:
                if not create:
                    raise GitopsError(f"{self.display}: missing key {'.'.join(keys[: i + 1])}")
                node[key] = CommentedMap()
            node = node[key]
            if not isinstance(node, dict):
                raise GitopsError(
                    f"{self.display}: {'.'.join(keys[: i + 1])} must be a mapping, "
                    f"found {type(node).__name__}"
                )
        return node

    def set(self, keys: Iterable[str], value: Any) -> bool:
        """Set a scalar, keeping the quoting style of the value it replaces. Returns changed."""
        keys = tuple(keys)
        parent = self._parent(keys, create=True)
        last = keys[-1]
        old = parent.get(last, MISSING)
        if old is not MISSING and _plain(old) == value and type(old) is not bool:
            return False
        new: Any = value
        if isinstance(value, str):
            if isinstance(old, DoubleQuotedScalarString) or old is MISSING:
                new = DoubleQuotedScalarString(value)
            elif isinstance(old, SingleQuotedScalarString):
                new = SingleQuotedScalarString(value)
        if old is MISSING:
            parent.insert(0, last, new)
        else:
            parent[last] = new
        self.changes.append(Change(keys, old, value))
        return True

    def delete(self, keys: Iterable[str]) -> bool:
        keys = tuple(keys)
        parent = self._parent(keys, create=False)
        if keys[-1] not in parent:
            return False
        old = parent[keys[-1]]
        del parent[keys[-1]]
        self.changes.append(Change(keys, old, MISSING))
        return True

    def render(self) -> str:
        return _dump(self.yaml, self.data)

    def new_text(self) -> str:
        """The file's text after the changes, refusing when unrelated lines would move."""
        canonical = _dump(make_yaml(), make_yaml().load(self.original))
        if canonical != self.original:
            first = next(
                (
                    i + 1
                    for i, (a, b) in enumerate(
                        zip(self.original.splitlines(), canonical.splitlines(), strict=False)
                    )
                    if a != b
                ),
                min(len(self.original.splitlines()), len(canonical.splitlines())) + 1,
            )
            raise GitopsError(
                f"{self.display}: line {first} is not in the layout the promotion tool writes "
                "(2-space mappings, list items indented by 2 under their key, no tabs); "
                "rewriting it would change lines that are not being promoted. "
                "Reformat the file in its own commit first."
            )
        return self.render()

    def diff(self, new_text: str | None = None) -> str:
        new_text = self.new_text() if new_text is None else new_text
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"a/{self.display}",
                tofile=f"b/{self.display}",
            )
        )


def load_plain(path: Path, display: str | None = None) -> Any:
    """Load a YAML file into plain Python data (dicts, lists, scalars)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise GitopsError(f"{display or path}: file not found") from exc
    return load_plain_text(text, display or str(path))


def load_plain_text(text: str, display: str) -> Any:
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise GitopsError(f"{display}: not valid YAML: {exc}") from exc


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's merge of value files: mappings merge key by key, everything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


# --------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------


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
    def policy_path(self) -> Path:
        return self.dir / "policy.yaml"

    def policy(self) -> dict[str, Any]:
        if not self.policy_path.is_file():
            return {}
        data = load_plain(self.policy_path, self.rel(self.policy_path)) or {}
        if not isinstance(data, dict):
            raise GitopsError(f"{self.rel(self.policy_path)}: expected a mapping at the top level")
        return data

    def promotion_strategy(self) -> str:
        """How a promotion enters: rolling (replace stable), canary, or blueGreen (idle colour)."""
        where = self.rel(self.policy_path)
        promotion = self.policy().get("promotion") or {}
        value = promotion.get("strategy")
        base = base_strategy(self)
        if value is None:
            return "blueGreen" if base == "blueGreen" else "rolling"
        if value not in ("rolling", "canary", "blueGreen"):
            raise GitopsError(
                f"{where}: promotion.strategy is {value!r}; expected rolling, canary or blueGreen"
            )
        if (value == "blueGreen") != (base == "blueGreen"):
            raise GitopsError(
                f"{where}: promotion.strategy {value} does not fit rollout.strategy {base} in "
                f"{self.rel(self.values_path)} (blueGreen releases need a blueGreen environment)"
            )
        if value == "canary" and base != "rolling":
            raise GitopsError(
                f"{where}: promotion.strategy canary needs rollout.strategy rolling in "
                f"{self.rel(self.values_path)}: a canary release switches to canary in "
                "release.yaml and back when it finishes"
            )
        return value

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


def chart_defaults(root: Path) -> dict[str, Any]:
    path = root / CHART_DIR / "values.yaml"
    if not path.is_file():
        return copy.deepcopy(CONTRACT_DEFAULTS)
    data = load_plain(path, (CHART_DIR / "values.yaml").as_posix()) or {}
    return deep_merge(CONTRACT_DEFAULTS, data)


def merged_values(env: Environment, overrides: dict[Path, str] | None = None) -> dict[str, Any]:
    """Chart defaults merged with the environment's value files, as helm would merge them."""
    overrides = overrides or {}
    values = chart_defaults(env.root)
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


# --------------------------------------------------------------------------------------------
# What an environment runs
# --------------------------------------------------------------------------------------------


@dataclass
class EnvState:
    name: str
    strategy: str
    slots: dict[str, Version]
    canary_weight: int
    active_colour: str
    shadow_percent: float
    quarantine_image_tags: list[str] = field(default_factory=list)
    quarantine_model_versions: list[str] = field(default_factory=list)
    engine: str = "native"  # rollout.engine: native or argoRollouts

    @property
    def idle_colour(self) -> str:
        return "green" if self.active_colour == "blue" else "blue"

    def served(self) -> tuple[str, Version]:
        """The slot that answers users' requests (the whole of the traffic but a canary's)."""
        if self.strategy == "blueGreen":
            return self.active_colour, self.slots[self.active_colour]
        return "stable", self.slots["stable"]

    def candidate(self) -> tuple[str, Version] | None:
        """The slot that differs from what users get, if a release is in flight.

        canary and shadow are release phases (the environment's own strategy is rolling);
        in blueGreen a release is in flight while the idle colour holds another version
        (before the flip: the new one; after it: the previous one, kept as the way back).
        """
        if self.strategy in ("canary", "shadow"):
            return self.strategy, self.slots[self.strategy]
        if self.strategy == "blueGreen":
            idle = self.slots[self.idle_colour]
            if not idle.empty and not idle.same(self.slots[self.active_colour]):
                return self.idle_colour, idle
        return None

    def rollout_slot(self) -> str:
        """With Argo Rollouts, the slot the Rollout's pod template carries (the chart's
        nepse-predictor.rolloutSlot): the active colour, or the canary once one is set."""
        if self.strategy == "blueGreen":
            return self.active_colour
        return "stable" if self.slots["canary"].empty else "canary"

    def rendered_slots(self) -> dict[str, Version]:
        """The slots whose image and model the rendered manifests carry."""
        if self.engine == "argoRollouts":
            slot = self.rollout_slot()
            return {slot: self.slots[slot]}
        return self.slots_in_use()

    def slots_in_use(self) -> dict[str, Version]:
        names: list[str] = {
            "rolling": ["stable"],
            "canary": ["stable", "canary"],
            "blueGreen": ["blue", "green"],
            "shadow": ["stable", "shadow"],
        }[self.strategy]
        return {n: self.slots[n] for n in names if not self.slots[n].empty}

    def quarantined(self, version: Version) -> list[str]:
        reasons = []
        if version.image_tag and version.image_tag in self.quarantine_image_tags:
            reasons.append(f"imageTag {version.image_tag!r}")
        if version.model_version and version.model_version in self.quarantine_model_versions:
            reasons.append(f"modelVersion {version.model_version!r}")
        return reasons


def state_from_values(name: str, values: dict[str, Any]) -> EnvState:
    rollout = values.get("rollout") or {}
    strategy = rollout.get("strategy", "rolling")
    if strategy not in STRATEGIES:
        raise GitopsError(
            f"environment {name!r}: rollout.strategy is {strategy!r}; "
            f"expected one of {', '.join(STRATEGIES)}"
        )
    slots_raw = values.get("slots") or {}
    slots = {slot: Version.from_slot(slots_raw.get(slot)) for slot in SLOT_NAMES}
    colour = (rollout.get("blueGreen") or {}).get("activeColor", "blue")
    if colour not in COLOURS:
        raise GitopsError(
            f"environment {name!r}: rollout.blueGreen.activeColor is {colour!r}; "
            "expected blue or green"
        )
    quarantine = values.get("quarantine") or {}
    return EnvState(
        name=name,
        strategy=strategy,
        slots=slots,
        canary_weight=int((rollout.get("canary") or {}).get("weight") or 0),
        active_colour=colour,
        shadow_percent=percent_value((rollout.get("shadow") or {}).get("percent") or 0),
        quarantine_image_tags=[str(t) for t in quarantine.get("imageTags") or []],
        quarantine_model_versions=[str(v) for v in quarantine.get("modelVersions") or []],
        engine=str(rollout.get("engine") or "native"),
    )


def percent_value(value: object) -> float:
    """A percentage as written (the chart accepts fractions such as 12.5); whole numbers as int."""
    number = float(value)  # type: ignore[arg-type]
    return int(number) if number.is_integer() else number


def env_state(env: Environment, overrides: dict[Path, str] | None = None) -> EnvState:
    return state_from_values(env.name, merged_values(env, overrides))


def base_strategy(env: Environment) -> str:
    """The strategy an environment returns to when release.yaml does not override it."""
    values = chart_defaults(env.root)
    data = load_plain(env.values_path, env.rel(env.values_path)) or {}
    values = deep_merge(values, data)
    return (values.get("rollout") or {}).get("strategy", "rolling")


def iter_slot_keys(slot: str) -> Iterator[tuple[str, str, str]]:
    for name in SLOT_FIELDS:
        yield ("slots", slot, name)
