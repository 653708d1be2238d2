"""Points in time given on the command line: ISO 8601, Unix seconds, or an age such as ``2h``.

- ``2026-11-26``, ``2026-11-26T10:15:00Z``, ``2026-11-26T10:15:00+05:45``: a time without an
  offset is read as UTC, so a command means the same on every machine
- ``1764152100`` or ``1764152100.5``: seconds since the Unix epoch
- ``90s``, ``30m``, ``2h``, ``7d``: that long before now
"""

from __future__ import annotations

import datetime as dt
import re
import time

from nepse_predictor.errors import UserError

_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_EPOCH = re.compile(r"\d{9,11}(?:\.\d+)?")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(option: str, text: str, now: float | None = None) -> float:
    """Seconds since the epoch for `text`; the error names `option` and the accepted forms."""
    value = text.strip()
    age = _AGE.fullmatch(value)
    if age:
        current = time.time() if now is None else now
        return current - float(age.group(1)) * _UNIT_SECONDS[age.group(2)]
    if _EPOCH.fullmatch(value):
        return float(value)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{option} {text!r}: expected an ISO 8601 time (2026-11-26T10:15:00Z), Unix "
            "seconds, or an age such as 30m, 2h or 7d"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def iso_utc(seconds: float) -> str:
    """``2026-11-26T10:15:00.123Z``: the form exports and markers write."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
