"""Deterministic, clearly synthetic NEPSE-like price history, so that nothing needs a download.

The series imitate a few traits of the Nepal Stock Exchange: sessions run Sunday to Thursday,
daily moves are capped by a ±10% circuit breaker, listed names share a market factor, and
volatility clusters. A weak momentum and mean-reversion structure gives a model something to
learn. None of it is real market data.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np

# Symbol -> (starting price in NPR, beta to the market factor, own daily volatility)
LISTED_SYMBOLS: dict[str, tuple[float, float, float]] = {
    "NABIL": (520.0, 0.9, 0.012),
    "NICA": (410.0, 1.0, 0.014),
    "NTC": (880.0, 0.6, 0.010),
    "UPPER": (245.0, 1.3, 0.022),
    "CHCL": (560.0, 1.2, 0.019),
    "HIDCL": (205.0, 1.4, 0.024),
}
CIRCUIT_LIMIT = 0.10
SAMPLE_START = date(2022, 1, 2)
SAMPLE_DAYS = 720
SAMPLE_SEED = 43
BUNDLED_SAMPLE = Path(__file__).parent / "data" / "synthetic_nepse_ohlcv.csv"


def trading_days(start: date, count: int) -> list[date]:
    """`count` NEPSE sessions from `start` on: Sunday to Thursday (Python weekdays 6, 0-3)."""
    days: list[date] = []
    current = start
    while len(days) < count:
        if current.weekday() in (6, 0, 1, 2, 3):
            days.append(current)
        current += timedelta(days=1)
    return days


def generate(
    symbols: list[str] | None = None,
    days: int = SAMPLE_DAYS,
    seed: int = SAMPLE_SEED,
    start: date = SAMPLE_START,
) -> list[dict[str, object]]:
    """Rows (Date, Symbol, Open, High, Low, Close, Volume) sorted by symbol, then date."""
    symbols = symbols or list(LISTED_SYMBOLS)
    unknown = [s for s in symbols if s not in LISTED_SYMBOLS]
    if unknown:
        raise ValueError(f"unknown symbol(s) {unknown}; choose from {sorted(LISTED_SYMBOLS)}")
    rng = np.random.default_rng(seed)
    sessions = trading_days(start, days)
    market = np.zeros(days)
    market_vol = 0.009
    for t in range(1, days):
        market_vol = 0.9 * market_vol + 0.1 * (0.006 + 0.8 * abs(market[t - 1]))
        market[t] = 0.12 * market[t - 1] + rng.normal(0.0003, market_vol)

    rows: list[dict[str, object]] = []
    for symbol in symbols:
        price, beta, own_vol = LISTED_SYMBOLS[symbol]
        close = price
        prev_return = 0.0
        anchor = price
        vol = own_vol
        for t, session in enumerate(sessions):
            vol = 0.85 * vol + 0.15 * (own_vol + 0.5 * abs(prev_return))
            reversion = -0.05 * np.log(close / anchor)
            move = beta * market[t] + 0.15 * prev_return + reversion + rng.normal(0.0, vol)
            move = float(np.clip(move, -CIRCUIT_LIMIT, CIRCUIT_LIMIT))
            open_ = close * (1 + rng.normal(0.0, vol / 4))
            new_close = close * np.exp(move)
            wick = abs(rng.normal(0.0, vol / 2))
            high = max(open_, new_close) * (1 + wick)
            low = min(open_, new_close) * (1 - abs(rng.normal(0.0, vol / 2)))
            volume = int(rng.lognormal(9.5 + 12 * abs(move), 0.35))
            rows.append(
                {
                    "Date": session.isoformat(),
                    "Symbol": symbol,
                    "Open": round(open_, 2),
                    "High": round(max(high, open_, new_close), 2),
                    "Low": round(min(low, open_, new_close), 2),
                    "Close": round(new_close, 2),
                    "Volume": volume,
                }
            )
            anchor = 0.98 * anchor + 0.02 * new_close
            prev_return = move
            close = new_close
    return rows


def write_csv(rows: list[dict[str, object]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path
