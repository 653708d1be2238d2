"""The release plan of an environment: the `release:` section of its policy.yaml.

`nepse-gitops advance` walks a release through it, one commit per step:

    release:
      canary:                # promotion.strategy canary
        steps:               # weights in rising order; after the last one's pause: finish
          - weight: 5
            pause: 2h        # at least this long at the weight before the gate may pass it
            gate:            # optional: thresholds for this step, over the `gate:` section
              minRequests: 200
          - {weight: 25, pause: 2h}
      shadow:                # a shadow phase (`nepse-gitops shadow start`)
        duration: 7d         # mirrored this long before it may be promoted
        minAgreement: 0.97   # share of mirrored requests whose direction matches stable's
      blueGreen:             # promotion.strategy blueGreen
        bakeBeforeFlip: 30m  # the idle colour takes preview traffic this long
        bakeBeforeFinish: 1h # after the flip, the old colour stays this long as the way back

Every key is optional; what is left out comes from DEFAULT_PLAN (the chapter's 5, 25, 50 and
100 percent a few hours apart, a week of shadowing). Errors name the file and the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .durations import parse_duration
from .environments import Environment
from .errors import GitopsError
from .values import deep_merge


def _seconds(value: object) -> float:
    try:
        seconds = parse_duration(value, "duration")
    except GitopsError as exc:
        raise ValueError(str(exc).removeprefix("duration: ")) from exc
    if seconds <= 0:
        raise ValueError(f"must be longer than 0s, got {value!r}")
    return seconds


Seconds = Annotated[float, BeforeValidator(_seconds)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CanaryStep(_Section):
    weight: int = Field(ge=1, le=100)
    pause: Seconds
    # Thresholds of this step, merged over the environment's `gate:` section.
    gate: dict[str, Any] = Field(default_factory=dict)


class CanaryPlan(_Section):
    steps: list[CanaryStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _rising(self) -> CanaryPlan:
        weights = [s.weight for s in self.steps]
        for i in range(1, len(weights)):
            if weights[i] <= weights[i - 1]:
                raise ValueError(
                    f"weights must rise from step to step: steps[{i}].weight {weights[i]} "
                    f"follows steps[{i - 1}].weight {weights[i - 1]}"
                )
        return self

    @property
    def weights(self) -> list[int]:
        return [s.weight for s in self.steps]


class ShadowPlan(_Section):
    duration: Seconds
    min_agreement: float = Field(alias="minAgreement", ge=0, le=1)


class BlueGreenPlan(_Section):
    bake_before_flip: Seconds = Field(alias="bakeBeforeFlip")
    bake_before_finish: Seconds = Field(alias="bakeBeforeFinish")


class ReleasePlan(_Section):
    canary: CanaryPlan
    shadow: ShadowPlan
    blue_green: BlueGreenPlan = Field(alias="blueGreen")


DEFAULT_PLAN: dict[str, Any] = {
    "canary": {
        "steps": [
            {"weight": 5, "pause": "2h"},
            {"weight": 25, "pause": "2h"},
            {"weight": 50, "pause": "2h"},
            {"weight": 100, "pause": "1h"},
        ]
    },
    "shadow": {"duration": "7d", "minAgreement": 0.97},
    "blueGreen": {"bakeBeforeFlip": "30m", "bakeBeforeFinish": "1h"},
}


def _field(loc: tuple[int | str, ...]) -> str:
    text = "release"
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def parse_release_plan(section: object, where: str) -> ReleasePlan:
    """The plan from a policy file's `release:` value (None: the defaults)."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise GitopsError(f"{where}: release must be a mapping, got {section!r}")
    # Steps replace the default steps as a whole; other keys are merged one by one.
    merged = deep_merge(DEFAULT_PLAN, {k: v for k, v in section.items() if k != "canary"})
    canary = section.get("canary")
    if canary is not None:
        merged["canary"] = (
            {**DEFAULT_PLAN["canary"], **canary} if isinstance(canary, dict) else canary
        )
    try:
        return ReleasePlan.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif error["type"] != "value_error":
                message += f", got {error['input']!r}"
            problems.append(f"{_field(tuple(error['loc']))}: {message}")
        raise GitopsError(f"{where}: " + "; ".join(problems)) from None


def load_release_plan(env: Environment) -> ReleasePlan:
    return parse_release_plan(env.policy().get("release"), env.rel(env.policy_path))
