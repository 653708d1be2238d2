"""Loading OHLCV price history from CSV, daily or intraday, with errors that say what to fix.

Accepted files: columns Date, Open, High, Low, Close, Volume and an optional Symbol, in any
order and any letter case; the date column may also be called Datetime, Timestamp or Time.
A leading unnamed column holds the timestamps when no date column is named (what pandas
writes for a DatetimeIndex, and how many public datasets ship), else it is an index and
ignored. A timestamp is a date (2024-01-31, 2024/01/31) or a date and time of day
(2024-01-31 10:30:00, ISO 8601, with or without a UTC offset, the same for the whole file):
intraday bars are one series in time order like daily ones. Without a Symbol column the whole
file is one series.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import numpy as np

from nepse_predictor.artifacts import sha256_of
from nepse_predictor.errors import DataError
from nepse_predictor.features import MIN_BARS

REQUIRED_COLUMNS = ("date", "open", "high", "low", "close", "volume")
DATE_ALIASES = ("datetime", "timestamp", "time")
_INDEX_NAMES = ("", "unnamed: 0", "index")
PRICE_COLUMNS = ("open", "high", "low", "close")
DEFAULT_SYMBOL = "NEPSE"
# A training row needs a full feature window plus the next session for its label.
MIN_ROWS_PER_SYMBOL = MIN_BARS + 1


@dataclass(frozen=True)
class Series:
    """One symbol's bars in time order; `dates` are dates, or datetimes for intraday bars."""

    symbol: str
    dates: tuple[date, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@dataclass(frozen=True)
class PriceHistory:
    path: Path
    sha256: str
    series: tuple[Series, ...]

    @property
    def rows(self) -> int:
        return sum(len(s.dates) for s in self.series)


def _column_index(path: Path, header: list[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    for alias in DATE_ALIASES:
        if "date" not in names and alias in names:
            names[names.index(alias)] = "date"
    if names and names[0] in _INDEX_NAMES:
        # A leading unnamed column: the timestamps (a DatetimeIndex written by pandas) when no
        # column is named as the date, else a row index.
        names[0] = "" if "date" in names else "date"
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if not name:
            continue
        if name in index:
            raise DataError(f"{path}: column {header[position].strip()!r} appears twice")
        index[name] = position
    missing = [c.capitalize() for c in REQUIRED_COLUMNS if c not in index]
    if missing:
        found = ", ".join(h.strip() for h in header if h.strip()) or "none"
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found: {found})")
    return index


def _parse_date(path: Path, line: int, text: str, column: str = "column 'Date'") -> date:
    """A date, or a datetime when the text has a time of day."""
    cleaned = text.strip().replace("/", "-")
    try:
        if len(cleaned) <= 10:
            return date.fromisoformat(cleaned)
        stamp = datetime.fromisoformat(cleaned)
    except ValueError:
        raise DataError(
            f"{path}: row {line}: {column}: {text.strip()!r} is not a date (YYYY-MM-DD) "
            "or a timestamp (YYYY-MM-DD HH:MM[:SS][+HH:MM])"
        ) from None
    if stamp.time() == time() and stamp.tzinfo is None:
        return stamp.date()
    return stamp


def _comparable(path: Path, bars: list[tuple[int, date, dict[str, float]]]) -> list[date]:
    """The bars' timestamps made comparable: all dates, or all datetimes when any has a time
    of day (a plain date is midnight then), and all with a UTC offset or none."""
    stamps = [when for _, when, _ in bars]
    if not any(isinstance(when, datetime) for when in stamps):
        return stamps
    aware = None
    out: list[date] = []
    for line, when, _ in bars:
        stamp = when if isinstance(when, datetime) else datetime.combine(when, time())
        if aware is None:
            aware = stamp.tzinfo is not None
        elif (stamp.tzinfo is not None) != aware:
            raise DataError(
                f"{path}: row {line}: column 'Date': mixes timestamps with and without a UTC "
                "offset; give all of them one or none"
            )
        out.append(stamp)
    return out


def _parse_number(path: Path, line: int, column: str, text: str) -> float:
    cleaned = text.strip().replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        raise DataError(
            f"{path}: row {line}: column {column.capitalize()!r}: {text.strip()!r} is not a number"
        ) from None
    if not np.isfinite(value):
        raise DataError(
            f"{path}: row {line}: column {column.capitalize()!r}: {text.strip()!r} "
            "is not a finite number"
        )
    return value


def _check_bar(path: Path, line: int, bar: dict[str, float]) -> None:
    for column in PRICE_COLUMNS:
        if bar[column] <= 0:
            raise DataError(
                f"{path}: row {line}: column {column.capitalize()!r}: price must be positive, "
                f"got {bar[column]:g}"
            )
    if bar["volume"] < 0:
        raise DataError(
            f"{path}: row {line}: column 'Volume': must not be negative, got {bar['volume']:g}"
        )
    if bar["high"] < max(bar["open"], bar["close"], bar["low"]):
        raise DataError(
            f"{path}: row {line}: column 'High': {bar['high']:g} is below the session's "
            "open, close or low"
        )
    if bar["low"] > min(bar["open"], bar["close"]):
        raise DataError(
            f"{path}: row {line}: column 'Low': {bar['low']:g} is above the session's open or close"
        )


def load_ohlcv(path: str | Path, min_rows_per_symbol: int = MIN_ROWS_PER_SYMBOL) -> PriceHistory:
    """Read and check a price-history CSV; raise DataError naming the row and column."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows: dict[str, list[tuple[int, date, dict[str, float]]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the file is empty")
        columns = _column_index(path, header)
        date_column = (
            "the unnamed first column (read as the dates)"
            if columns["date"] == 0 and header[0].strip().lower() in _INDEX_NAMES
            else "column 'Date'"
        )
        symbol_at = columns.get("symbol")
        for line, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue
            if len(record) < len(header):
                raise DataError(
                    f"{path}: row {line}: has {len(record)} fields, the header has {len(header)}"
                )
            when = _parse_date(path, line, record[columns["date"]], date_column)
            bar = {
                name: _parse_number(path, line, name, record[columns[name]])
                for name in REQUIRED_COLUMNS[1:]
            }
            _check_bar(path, line, bar)
            symbol = record[symbol_at].strip().upper() if symbol_at is not None else ""
            if symbol_at is not None and not symbol:
                raise DataError(f"{path}: row {line}: column 'Symbol' is empty")
            rows.setdefault(symbol or DEFAULT_SYMBOL, []).append((line, when, bar))

    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    series = tuple(
        _to_series(path, symbol, bars, min_rows_per_symbol) for symbol, bars in rows.items()
    )
    return PriceHistory(path=path, sha256=sha256_of(path), series=series)


def _to_series(
    path: Path,
    symbol: str,
    bars: list[tuple[int, date, dict[str, float]]],
    min_rows: int,
) -> Series:
    stamps = _comparable(path, bars)
    lines = [line for line, _, _ in bars]
    for (prev_line, prev_date), (line, when) in itertools.pairwise(zip(lines, stamps, strict=True)):
        if when == prev_date:
            raise DataError(
                f"{path}: row {line}: duplicate date {when} for symbol {symbol} "
                f"(also on row {prev_line})"
            )
        if when < prev_date:
            raise DataError(
                f"{path}: row {line}: dates are not sorted for symbol {symbol}: "
                f"{when} comes after {prev_date} (row {prev_line})"
            )
    if len(bars) < min_rows:
        raise DataError(
            f"{path}: symbol {symbol} has {len(bars)} rows; at least {min_rows} are needed "
            f"for the {MIN_BARS}-session feature window and a next-day label"
        )

    def column(name: str) -> np.ndarray:
        return np.array([bar[name] for _, _, bar in bars], dtype=np.float64)

    return Series(
        symbol=symbol,
        dates=tuple(stamps),
        open=column("open"),
        high=column("high"),
        low=column("low"),
        close=column("close"),
        volume=column("volume"),
    )
