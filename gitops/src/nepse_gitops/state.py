"""What an environment runs: the versions in its slots, its strategy and the quarantine list,
read from its merged values (values.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .environments import QUARANTINE_FILE, Environment
from .errors import GitopsError
from .values import SLOT_NAMES, merged_values

STRATEGIES = ("rolling", "canary", "blueGreen", "shadow")
COLOURS = ("blue", "green")


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


@dataclass(frozen=True)
class Quarantine:
    """Image tags and model versions that must not run (environments/quarantine.yaml)."""

    image_tags: tuple[str, ...] = ()
    model_versions: tuple[str, ...] = ()

    def blocks(self, version: Version) -> list[str]:
        """What of ``version`` is on the list, e.g. ``["imageTag 'abc'"]``; empty: it may run."""
        reasons = []
        if version.image_tag and version.image_tag in self.image_tags:
            reasons.append(f"imageTag {version.image_tag!r}")
        if version.model_version and version.model_version in self.model_versions:
            reasons.append(f"modelVersion {version.model_version!r}")
        return reasons


@dataclass
class EnvState:
    name: str
    strategy: str
    slots: dict[str, Version]
    canary_weight: int
    active_colour: str
    shadow_percent: float
    quarantine: Quarantine = field(default_factory=Quarantine)
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
        return self.quarantine.blocks(version)

    def refuse_quarantined(self, version: Version, refusing: str, name_file: bool = True) -> None:
        """Refuse (``refusing to <refusing>: ...``) when the list holds ``version``'s image tag
        or model version."""
        blocked = self.quarantined(version)
        if blocked:
            where = f" in {QUARANTINE_FILE.as_posix()}" if name_file else ""
            raise GitopsError(
                f"refusing to {refusing}: {' and '.join(blocked)} is quarantined{where}"
            )


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
        quarantine=Quarantine(
            image_tags=tuple(str(t) for t in quarantine.get("imageTags") or []),
            model_versions=tuple(str(v) for v in quarantine.get("modelVersions") or []),
        ),
        engine=str(rollout.get("engine") or "native"),
    )


def percent_value(value: str | float) -> float:
    """A percentage as written (the chart accepts fractions such as 12.5); whole numbers as int."""
    number = float(value)
    return int(number) if number.is_integer() else number


def env_state(env: Environment, overrides: dict[Path, str] | None = None) -> EnvState:
    return state_from_values(env.name, merged_values(env, overrides))
