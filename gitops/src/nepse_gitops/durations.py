"""Durations as people write them in policy files and flags: 90s, 30m, 2h, 7d."""

from __future__ import annotations

import re

from .errors import GitopsError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")


def parse_duration(text: object, where: str) -> float:
    """Seconds in ``text`` (a bare number counts as seconds); ``where`` names the field."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise GitopsError(f"{where}: expected a duration such as 30s, 5m, 2h or 7d, got {text!r}")
    match = _DURATION.fullmatch(str(text).strip())
    if not match:
        raise GitopsError(f"{where}: expected a duration such as 30s, 5m, 2h or 7d, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """The largest whole units, e.g. 5400 -> '1h30m', 42 -> '42s'."""
    remaining = max(0, round(seconds))
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def promql_duration(seconds: float) -> str:
    """A PromQL range duration: whole seconds, at least 1s."""
    return f"{max(1, round(seconds))}s"
