"""The gate's thresholds: the `gate:` section of an environment's policy.yaml.

    gate:
      minRequests: 500          # fewer answers from the candidate: inconclusive (exit 3)
      errorStatuses: "5.."      # the statuses counted as errors (a regex on the status label)
      errorRatio: {max: 0.01, maxIncrease: 0.005}
      p99Seconds: {max: 0.25, maxRatio: 1.5, ratioFloor: 0.05}
      prometheus:               # where `gate` and `advance` read the metrics
        url: http://prometheus-operated.monitoring.svc:9090
        selector: namespace="nepse-prod"
        trackLabel: track
        window: 15m

A canary step of the release plan may carry its own `gate:` over this one; the shadow's
agreement threshold is the plan's (`release.shadow.minAgreement`).
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from .durations import parse_duration
from .environments import Environment
from .errors import GateConfigError, GitopsError
from .release_plan import load_release_plan
from .values import deep_merge


@dataclass(frozen=True)
class GateConfig:
    """The thresholds and the Prometheus source, as the gate uses them."""

    min_requests: int = 100
    error_statuses: str = r"5.."
    max_error_ratio: float | None = None
    max_error_ratio_increase: float | None = None
    max_p99_seconds: float | None = None
    max_p99_ratio: float | None = None
    p99_ratio_floor: float = 0.05
    min_shadow_agreement: float | None = None
    prometheus_url: str | None = None
    prometheus_selector: str = ""
    prometheus_track_label: str = "track"
    prometheus_window: str = "10m"


# -- the `gate:` section as written ------------------------------------------------------------
# Numbers are strict (a quoted "0.01" or a boolean is refused); a section left empty or null
# takes the defaults. A validator's ValueError text follows the field's name in the message.


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ErrorRatioSection(_Section):
    max: float | None = Field(None, ge=0.0, le=1)
    max_increase: float | None = Field(None, alias="maxIncrease", ge=0.0, le=1)


class P99Section(_Section):
    max: float | None = Field(None, ge=0.0)
    max_ratio: float | None = Field(None, alias="maxRatio", ge=0.0)
    ratio_floor: float | None = Field(None, alias="ratioFloor", ge=0.0)


class PrometheusSection(_Section):
    url: str | None = None
    selector: str | None = None
    track_label: str | None = Field(None, alias="trackLabel")
    window: str | int | float | None = None

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            try:
                parse_duration(value, "")
            except GitopsError as exc:
                raise ValueError(str(exc)) from None  # ": expected a duration such as ..."
        return value


class GateSection(_Section):
    min_requests: float | None = Field(None, alias="minRequests", ge=1)
    error_statuses: str | None = Field(None, alias="errorStatuses")
    error_ratio: ErrorRatioSection | None = Field(None, alias="errorRatio")
    p99_seconds: P99Section | None = Field(None, alias="p99Seconds")
    prometheus: PrometheusSection | None = None

    @field_validator("error_statuses", mode="before")
    @classmethod
    def _regex(cls, value: object) -> str | None:
        if value is None:
            return None
        try:
            re.compile(str(value))
        except re.error as exc:
            raise ValueError(f" is not a regex: {exc}") from None
        return str(value)

    def config(self) -> GateConfig:
        err = self.error_ratio or ErrorRatioSection.model_validate({})
        p99 = self.p99_seconds or P99Section.model_validate({})
        prom = self.prometheus or PrometheusSection.model_validate({})
        defaults = GateConfig()
        return GateConfig(
            min_requests=(
                int(self.min_requests) if self.min_requests is not None else defaults.min_requests
            ),
            error_statuses=self.error_statuses or defaults.error_statuses,
            max_error_ratio=err.max,
            max_error_ratio_increase=err.max_increase,
            max_p99_seconds=p99.max,
            max_p99_ratio=p99.max_ratio,
            p99_ratio_floor=(
                p99.ratio_floor if p99.ratio_floor is not None else defaults.p99_ratio_floor
            ),
            prometheus_url=prom.url,
            prometheus_selector=prom.selector or "",
            prometheus_track_label=prom.track_label or defaults.prometheus_track_label,
            prometheus_window=str(prom.window or defaults.prometheus_window),
        )


def parse_gate_section(gate: object, where: str) -> GateConfig:
    """A `gate:` mapping; ``where`` names it in errors (``<policy file>: gate``)."""
    if not isinstance(gate, dict):
        raise GateConfigError(f"{where}: expected a mapping with the thresholds, got {gate!r}")
    if "shadowAgreement" in gate:
        raise GateConfigError(
            f"{where}.shadowAgreement: the shadow's agreement threshold is "
            "release.shadow.minAgreement (the release plan), not a gate key"
        )
    try:
        return GateSection.model_validate(gate).config()
    except ValidationError as exc:
        raise GateConfigError("; ".join(_problems(exc.errors(), where))) from None


def _problems(errors: Sequence[ErrorDetails], where: str) -> list[str]:
    """pydantic's errors in the gate's words: `<where>.errorRatio.max must be between ...`."""
    problems: list[str] = []
    unknown: dict[tuple[str, ...], list[str]] = {}
    for error in errors:
        loc = tuple(str(part) for part in error["loc"])
        name = ".".join((where, *loc))
        kind, value = error["type"], error["input"]
        if kind == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(loc[-1])
        elif kind in ("float_type", "float_parsing", "int_type", "finite_number"):
            problems.append(f"{name} must be a number, got {value!r}")
        elif kind in ("greater_than_equal", "less_than_equal"):
            problems.append(f"{name} must be {_bounds(_field_at(loc))}, got {value}")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(f"{name} must be a mapping, got {value!r}")
        elif kind == "string_type":
            problems.append(f"{name} must be a string, got {value!r}")
        elif kind == "value_error":
            problems.append(name + error["msg"].removeprefix("Value error, "))
        else:
            problems.append(f"{name}: {error['msg']}, got {value!r}")
    for parent, keys in unknown.items():
        known = sorted(f.alias or n for n, f in _model_at(parent).model_fields.items())
        problems.insert(
            0,
            f"{'.'.join((where, *parent))}: unknown key(s) {', '.join(sorted(keys))} "
            f"(known: {', '.join(known)})",
        )
    return problems


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The section model in ``X | None``, if ``X`` is one."""
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _section_type(arg)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _by_alias(model: type[BaseModel], key: str) -> FieldInfo:
    return next(f for n, f in model.model_fields.items() if (f.alias or n) == key)


def _model_at(loc: tuple[str, ...]) -> type[BaseModel]:
    model: type[BaseModel] = GateSection
    for key in loc:
        inner = _section_type(_by_alias(model, key).annotation)
        assert inner is not None, loc
        model = inner
    return model


def _field_at(loc: tuple[str, ...]) -> FieldInfo:
    return _by_alias(_model_at(loc[:-1]), loc[-1])


def _bounds(info: FieldInfo) -> str:
    lo = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
    hi = next((m.le for m in info.metadata if isinstance(m, annotated_types.Le)), None)
    return f"between {lo} and {hi}" if hi is not None else f"at least {lo}"


def load_gate_config(
    env: Environment, overrides: dict[str, Any] | None = None, where: str = ""
) -> GateConfig:
    """The environment's `gate:` section, with ``overrides`` (a plan step's `gate:`) over it;
    the shadow's agreement threshold comes from the release plan."""
    policy = env.rel(env.policy_path)
    if not env.policy_path.is_file():
        raise GateConfigError(
            f"{policy} is missing: the gate's thresholds for {env.name} live there"
        )
    gate = env.policy().get("gate")
    if not isinstance(gate, dict):
        raise GateConfigError(f"{policy}: expected a `gate:` mapping with the thresholds")
    if overrides:
        parse_gate_section(overrides, where or f"{policy}: overrides")
        gate = deep_merge(gate, overrides)
    cfg = parse_gate_section(gate, where or f"{policy}: gate")
    return replace(cfg, min_shadow_agreement=load_release_plan(env).shadow.min_agreement)


def parse_window(text: str) -> float:
    try:
        return parse_duration(text, "--window")
    except GitopsError as exc:
        raise GateConfigError(str(exc)) from exc
