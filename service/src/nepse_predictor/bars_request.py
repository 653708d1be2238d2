"""`/v1/predict/bars` bodies to checked OHLCV series.

`{"series": [{"symbol": ..., "bars": [{open, high, low, close, volume, date?}, ...]}]}`, bars
oldest first, at least MIN_BARS per series (the shape is `request_shapes.BarsRequest`). A bar's
`date` is a date (`2026-01-05`) or a timestamp (`2026-01-05T10:30:00`,
`2026-01-05 10:30:00+05:45`) for intraday bars.

The work a request can cost is bounded by the number of bars it may hold (NEPSE_MAX_BARS,
counted before any bar is read); what the shape cannot say (a bar's high at least its open,
close and low; dates in order) is checked here, in one vectorised pass per series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from nepse_predictor.features import FEATURE_NAMES, MIN_BARS, latest_features_of_many
from nepse_predictor.input_error import InputError, show
from nepse_predictor.request_decoding import decode, hint_table
from nepse_predictor.request_shapes import Bar, BarsRequest

_SERIES = "expected a non-empty list of {{symbol, bars}} objects"
_SYMBOL = "expected a symbol string of 1 to 64 characters"
HINTS = hint_table(
    {
        ("type", "series"): _SERIES + ", got {got}",
        ("missing|length", "series"): _SERIES,
        ("unknown", "*"): 'unknown field; send {{"series": [...]}}',
        ("unknown", "series[*].*"): "unknown field; a series has symbol and bars",
        ("type|length", "series[*].symbol"): _SYMBOL,
        ("type", "series[*].bars"): "expected a list of bars, got {got}",
        ("length", "series[*].bars"): (
            f"has {{count}} bars; the features need at least {MIN_BARS} (oldest first)"
        ),
        ("unknown", "series[*].bars[*].*"): (
            "unknown field; a bar has open, high, low, close, volume and date"
        ),
        ("type", "series[*].bars[*].date"): "expected a date or timestamp string, got {got}",
    }
)


@dataclass(frozen=True)
class CheckedSeries:
    """One series of a request after its checks."""

    symbol: str
    as_of: str | None
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class _SeriesSize(msgspec.Struct):
    bars: list[msgspec.Raw] | None = None


class _RequestSize(msgspec.Struct):
    """Just enough of a bars request to count its series and bars without reading a bar."""

    series: list[_SeriesSize] | None = None


_size_decoder = msgspec.json.Decoder(_RequestSize)


def _check_size(body: bytes, max_series: int, max_bars: int) -> None:
    try:
        size = _size_decoder.decode(body)
    except msgspec.MsgspecError:
        return  # the full decode names what is wrong
    series = size.series or []
    if len(series) > max_series:
        raise InputError(
            "series",
            f"{len(series)} series exceed the limit of {max_series} per request "
            "(NEPSE_MAX_BATCH_ROWS); split the batch",
            status=413,
        )
    total = sum(len(item.bars or ()) for item in series)
    if total > max_bars:
        raise InputError(
            "series",
            f"{total} bars in all exceed the limit of {max_bars} per request "
            f"(NEPSE_MAX_BARS); the features use only each series' last {MIN_BARS}",
            status=413,
        )


def _timestamp(value: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            field, f"{show(value)} is not a date (YYYY-MM-DD) or ISO 8601 timestamp"
        ) from None


def _check_dates(dates: list[str | None], field: str) -> None:
    if all(d is None for d in dates):
        return
    if any(d is None for d in dates):
        missing = dates.index(None)
        raise InputError(f"{field}[{missing}].date", "missing; give dates on all bars or none")
    # Every date is present here; the test only tells the type checker so.
    stamps = [_timestamp(d, f"{field}[{i}].date") for i, d in enumerate(dates) if d is not None]
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


def _check_ranges(matrix: np.ndarray, field: str) -> None:
    """Each bar's high at least its open, close and low; its low at most open and close."""
    o, h, lo, c, _ = matrix.T
    high_ok = h >= np.maximum(np.maximum(o, c), lo)
    low_ok = lo <= np.minimum(o, c)
    if high_ok.all() and low_ok.all():
        return
    index = int(np.argmin(high_ok & low_ok))
    if not high_ok[index]:
        raise InputError(
            f"{field}[{index}].high", f"{h[index]:g} is below the bar's open, close or low"
        )
    raise InputError(f"{field}[{index}].low", f"{lo[index]:g} is above the bar's open or close")


def _checked(series: Any, field: str) -> CheckedSeries:
    bars: list[Bar] = series.bars
    matrix = np.array(
        [(bar.open, bar.high, bar.low, bar.close, bar.volume) for bar in bars], dtype=np.float64
    )
    _check_ranges(matrix, f"{field}.bars")
    dates = [bar.date for bar in bars]
    _check_dates(dates, f"{field}.bars")
    return CheckedSeries(series.symbol, dates[-1], *(matrix[:, j].copy() for j in range(5)))


def parse_bars(body: bytes, max_series: int, max_bars: int) -> list[CheckedSeries]:
    """The checked series of a bars request: at most `max_series` of them holding at most
    `max_bars` bars in all (counted before any bar is read), each with at least MIN_BARS."""
    _check_size(body, max_series, max_bars)
    request = decode(body, BarsRequest, HINTS)
    return [_checked(item, f"series[{i}]") for i, item in enumerate(request.series)]


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
    series = parse_bars(body, max_series, max_bars)
    recent = np.stack(
        [np.stack([s.open, s.high, s.low, s.close, s.volume])[:, -MIN_BARS:] for s in series]
    )
    labels = [{"symbol": s.symbol, "as_of": s.as_of} for s in series]
    return labels, recent, _bar_features(recent)
