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
from dataclasses import dataclass

from .durations import parse_duration
from .environments import Environment
from .errors import GateConfigError, GitopsError
from .release_plan import load_release_plan
from .values import deep_merge


@dataclass
class GateConfig:
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


def _number(section: dict, key: str, where: str, lo: float = 0.0, hi: float | None = None):
    if key not in section or section[key] is None:
        return None
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GateConfigError(f"{where}.{key} must be a number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise GateConfigError(f"{where}.{key} must be {bound}, got {value}")
    return float(value)


GATE_KEYS = ("minRequests", "errorStatuses", "errorRatio", "p99Seconds", "prometheus")


def parse_gate_section(gate: object, where: str) -> GateConfig:
    """A `gate:` mapping; ``where`` names it in errors (``<policy file>: gate``)."""
    if not isinstance(gate, dict):
        raise GateConfigError(f"{where}: expected a mapping with the thresholds, got {gate!r}")
    if "shadowAgreement" in gate:
        raise GateConfigError(
            f"{where}.shadowAgreement: the shadow's agreement threshold is "
            "release.shadow.minAgreement (the release plan), not a gate key"
        )
    unknown = sorted(set(gate) - set(GATE_KEYS))
    if unknown:
        raise GateConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(GATE_KEYS))})"
        )
    cfg = GateConfig()
    min_requests = _number(gate, "minRequests", where, lo=1)
    if min_requests is not None:
        cfg.min_requests = int(min_requests)
    if "errorStatuses" in gate:
        cfg.error_statuses = str(gate["errorStatuses"])
        try:
            re.compile(cfg.error_statuses)
        except re.error as exc:
            raise GateConfigError(f"{where}.errorStatuses is not a regex: {exc}") from exc
    err = _mapping(gate, "errorRatio", where)
    cfg.max_error_ratio = _number(err, "max", f"{where}.errorRatio", hi=1)
    cfg.max_error_ratio_increase = _number(err, "maxIncrease", f"{where}.errorRatio", hi=1)
    p99 = _mapping(gate, "p99Seconds", where)
    cfg.max_p99_seconds = _number(p99, "max", f"{where}.p99Seconds")
    cfg.max_p99_ratio = _number(p99, "maxRatio", f"{where}.p99Seconds")
    floor = _number(p99, "ratioFloor", f"{where}.p99Seconds")
    if floor is not None:
        cfg.p99_ratio_floor = floor
    prom = _mapping(gate, "prometheus", where)
    cfg.prometheus_url = prom.get("url")
    cfg.prometheus_selector = str(prom.get("selector") or "")
    cfg.prometheus_track_label = str(prom.get("trackLabel") or "track")
    window = prom.get("window") or "10m"
    parse_duration(window, f"{where}.prometheus.window")
    cfg.prometheus_window = str(window)
    return cfg


def _mapping(section: dict, key: str, where: str) -> dict:
    value = section.get(key) or {}
    if not isinstance(value, dict):
        raise GateConfigError(f"{where}.{key} must be a mapping, got {value!r}")
    return value


def load_gate_config(
    env: Environment, overrides: dict | None = None, where: str = ""
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
    cfg.min_shadow_agreement = load_release_plan(env).shadow.min_agreement
    return cfg


def parse_window(text: str) -> float:
    try:
        return parse_duration(text, "--window")
    except GitopsError as exc:
        raise GateConfigError(str(exc)) from exc
