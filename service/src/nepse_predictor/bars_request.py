"""`/v1/predict/bars` bodies to checked OHLCV series.

`{"series": [{"symbol": ..., "bars": [{open, high, low, close, volume, date?}, ...]}]}`, bars
oldest first, at least `min_bars` per series. A bar's `date` is a date (`2026-01-05`) or a
timestamp (`2026-01-05T10:30:00`, `2026-01-05 10:30:00+05:45`) for intraday bars.

The work a request can cost is bounded by the number of bars it may hold (NEPSE_MAX_BARS,
checked before any bar is read) and kept small per bar: a series is checked in one vectorised
pass, and only when that pass finds a problem are its bars walked one by one to name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from nepse_predictor.features import FEATURE_NAMES, MIN_BARS, latest_features_of_many
from nepse_predictor.inputs import (
    FLOAT32_MAX,
    InputError,
    bad_number,
    json_type,
    load_json,
    show,
)

BAR_FIELDS = ("open", "high", "low", "close", "volume")
_BAR_KEYS = frozenset((*BAR_FIELDS, "date"))
_SERIES_KEYS = frozenset(("symbol", "bars"))
_NUMBER_TYPES = frozenset((float, int))


@dataclass(frozen=True)
class CheckedSeries:
    """One series of a request after its checks (the request shape is schemas.BarSeries)."""

    symbol: str
    as_of: str | None
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def _timestamp(value: Any, field: str) -> datetime:
    if type(value) is not str:
        raise InputError(field, f"expected a date or timestamp string, got {json_type(value)}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            field, f"{show(value)} is not a date (YYYY-MM-DD) or ISO 8601 timestamp"
        ) from None


def _bar_number(bar: dict[str, Any], key: str, field: str) -> float:
    if key not in bar:
        raise InputError(f"{field}.{key}", "missing required field")
    problem = bad_number(bar[key])
    if problem is not None:
        raise InputError(f"{field}.{key}", problem)
    return float(bar[key])


def _check_bar(bar: Any, field: str) -> None:
    """Raise the InputError that names what is wrong with one bar, if anything is."""
    if type(bar) is not dict:
        raise InputError(field, f"expected a bar object, got {json_type(bar)}")
    for key in bar:
        if key not in _BAR_KEYS:
            raise InputError(f"{field}.{key}", f"unknown field; a bar has {', '.join(_BAR_KEYS)}")
    o, h, lo, c, v = (_bar_number(bar, key, field) for key in BAR_FIELDS)
    for key, value in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if value <= 0:
            raise InputError(f"{field}.{key}", f"price must be positive, got {value:g}")
    if v < 0:
        raise InputError(f"{field}.volume", f"must not be negative, got {v:g}")
    if h < max(o, c, lo):
        raise InputError(f"{field}.high", f"{h:g} is below the bar's open, close or low")
    if lo > min(o, c):
        raise InputError(f"{field}.low", f"{lo:g} is above the bar's open or close")
    if bar.get("date") is not None:
        _timestamp(bar["date"], f"{field}.date")


def _check_dates(dates: list[Any], field: str) -> None:
    if all(d is None for d in dates):
        return
    if any(d is None for d in dates):
        missing = dates.index(None)
        raise InputError(f"{field}[{missing}].date", "missing; give dates on all bars or none")
    stamps = [_timestamp(d, f"{field}[{i}].date") for i, d in enumerate(dates)]
    aware = stamps[0].tzinfo is not None
    for i in range(1, len(stamps)):
        if (stamps[i].tzinfo is not None) != aware:
            raise InputError(f"{field}[{i}].date", "mixes timestamps with and without a UTC offset")
        if stamps[i] <= stamps[i - 1]:
            raise InputError(
                f"{field}[{i}].date",
                f"{dates[i]} is not after {dates[i - 1]}; send bars oldest first, one per "
                "session or interval",
            )


def _vectorised(bars: list[Any]) -> np.ndarray | None:
    """The bars as a (bars x OHLCV) matrix when every check passes, else None."""
    try:
        if not all(bar.keys() <= _BAR_KEYS for bar in bars):
            return None
        values = [
            (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) for bar in bars
        ]
    except (AttributeError, KeyError):
        return None
    if not {type(v) for row in values for v in row} <= _NUMBER_TYPES:
        return None
    try:
        matrix = np.array(values, dtype=np.float64)
    except OverflowError:
        return None
    o, h, lo, c, v = matrix.T
    ok = (
        np.isfinite(matrix).all()
        and np.abs(matrix).max() <= FLOAT32_MAX
        and (matrix[:, :4] > 0).all()
        and (v >= 0).all()
        and (h >= np.maximum(np.maximum(o, c), lo)).all()
        and (lo <= np.minimum(o, c)).all()
    )
    return matrix if ok else None


def _series(item: Any, field: str, min_bars: int) -> CheckedSeries:
    if type(item) is not dict:
        raise InputError(field, f"expected an object, got {json_type(item)}")
    for key in item:
        if key not in _SERIES_KEYS:
            raise InputError(f"{field}.{key}", "unknown field; a series has symbol and bars")
    symbol = item.get("symbol")
    if type(symbol) is not str or not 1 <= len(symbol) <= 64:
        raise InputError(f"{field}.symbol", "expected a symbol string of 1 to 64 characters")
    bars = item.get("bars")
    if type(bars) is not list:
        raise InputError(f"{field}.bars", f"expected a list of bars, got {json_type(bars)}")
    if len(bars) < min_bars:
        raise InputError(
            f"{field}.bars",
            f"has {len(bars)} bars; the features need at least {min_bars} (oldest first)",
        )
    matrix = _vectorised(bars)
    if matrix is None:
        for index, bar in enumerate(bars):
            _check_bar(bar, f"{field}.bars[{index}]")
        raise AssertionError(f"{field}: a bar failed the vectorised check but none one by one")
    dates = [bar.get("date") for bar in bars]
    _check_dates(dates, f"{field}.bars")
    return CheckedSeries(symbol, dates[-1], *(matrix[:, j].copy() for j in range(5)))


def parse_bars(body: bytes, min_bars: int, max_series: int, max_bars: int) -> list[CheckedSeries]:
    """The checked series of a bars request: at most `max_series` of them holding at most
    `max_bars` bars in all, each with at least `min_bars`."""
    obj = load_json(body)
    if type(obj) is not dict:
        raise InputError("body", f"expected a JSON object, got {json_type(obj)}")
    for key in obj:
        if key != "series":
            raise InputError(key, 'unknown field; send {"series": [...]}')
    series = obj.get("series")
    if type(series) is not list or not series:
        raise InputError("series", "expected a non-empty list of {symbol, bars} objects")
    if len(series) > max_series:
        raise InputError(
            "series",
            f"{len(series)} series exceed the limit of {max_series} per request "
            "(NEPSE_MAX_BATCH_ROWS); split the batch",
            status=413,
        )
    total = 0
    for item in series:
        bars = item.get("bars") if type(item) is dict else None
        total += len(bars) if type(bars) is list else 0
    if total > max_bars:
        raise InputError(
            "series",
            f"{total} bars in all exceed the limit of {max_bars} per request "
            f"(NEPSE_MAX_BARS); the features use only each series' last {min_bars}",
            status=413,
        )
    return [_series(item, f"series[{i}]", min_bars) for i, item in enumerate(series)]


def _bar_features(recent: np.ndarray) -> np.ndarray:
    """Feature rows of the series' last bars, from their last MIN_BARS bars stacked
    (series x OHLCV x bars), all series in one pass."""
    rows = latest_features_of_many(*(recent[:, column, :] for column in range(5)))
    bad = ~np.isfinite(rows)
    if bad.any():
        index, column = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"series[{index}].bars",
            f"feature {FEATURE_NAMES[column]} of the last bar is not finite; check the last "
            f"{MIN_BARS} bars",
        )
    return rows.astype(np.float32)


def parse_bars_request(
    body: bytes, max_series: int, max_bars: int
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Each series' symbol and as_of, their last MIN_BARS bars stacked (series x OHLCV x
    bars; the cache key) and the feature rows of their last bars. Runs in a worker process
    for large bodies, so it returns plain arrays, not one object per series."""
    series = parse_bars(body, MIN_BARS, max_series, max_bars)
    recent = np.stack(
        [np.stack([s.open, s.high, s.low, s.close, s.volume])[:, -MIN_BARS:] for s in series]
    )
    labels = [{"symbol": s.symbol, "as_of": s.as_of} for s in series]
    return labels, recent, _bar_features(recent)
