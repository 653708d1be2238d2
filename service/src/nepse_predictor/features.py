"""The model's features: one function, used by training and by serving.

Every feature of the bar at index t depends only on the `MIN_BARS` bars ending at t, so the
features of the latest bar computed from the last `MIN_BARS` bars equal the features of the
same bar computed from the whole history. Serving relies on that: a client sends recent bars,
the service computes the latest row with the very function training used.

| name            | meaning                                                             |
|-----------------|---------------------------------------------------------------------|
| ret_1           | log return over 1 session                                           |
| ret_5           | log return over 5 sessions                                          |
| ret_20          | log return over 20 sessions                                         |
| sma_ratio_5_20  | 5-session simple moving average of close / 20-session one, minus 1  |
| close_sma_20    | close / 20-session simple moving average, minus 1                   |
| volatility_20   | standard deviation of the last 20 one-session log returns           |
| rsi_14          | relative strength index over 14 sessions (simple averages), 0..100  |
| volume_z_20     | z-score of log volume against the last 20 sessions                  |
| range_pct       | (high - low) / close of the session                                 |
| close_location  | where the close sits in the session's range, 0 (low) .. 1 (high)    |
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_20",
    "sma_ratio_5_20",
    "close_sma_20",
    "volatility_20",
    "rsi_14",
    "volume_z_20",
    "range_pct",
    "close_location",
)

# Bars needed for one complete feature row: 20 returns need 21 closes.
MIN_BARS = 21
# A rolling deviation below this is rounding noise of a flat window, not variation.
_FLAT = 1e-9
# The columns of bars, in the order (and with the shapes) `compute_features` takes them.
BarColumns: TypeAlias = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# Every helper works along the last axis (time), so the same code computes one series
# (bars,) or many of equal length at once (series x bars).


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    if values.shape[-1] >= window:
        windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=-1)
        out[..., window - 1 :] = windows.mean(axis=-1)
    return out


def _rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    if values.shape[-1] >= window:
        windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=-1)
        out[..., window - 1 :] = windows.std(axis=-1, ddof=1)
    return out


def _lagged_difference(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    out[..., lag:] = values[..., lag:] - values[..., :-lag]
    return out


def _rsi(log_close: np.ndarray, window: int) -> np.ndarray:
    change = _lagged_difference(log_close, 1)
    gains = np.where(change > 0, change, 0.0)
    losses = np.where(change < 0, -change, 0.0)
    gains[..., 0] = losses[..., 0] = np.nan
    mean_gain = _rolling_mean(gains, window)
    mean_loss = _rolling_mean(losses, window)
    total = mean_gain + mean_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total > 0, 100.0 * mean_gain / total, 50.0)
    rsi[np.isnan(total)] = np.nan
    return rsi


def compute_features(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> np.ndarray:
    """Feature matrix (bars x FEATURE_NAMES) of one symbol's bars in time order; given
    (series x bars) arrays, one such matrix per series (series x bars x FEATURE_NAMES).

    Rows before the first complete window hold NaN. Prices must be positive and volumes
    non-negative; `data.load_ohlcv` and the request schemas check that before calling here.
    """
    del open_  # part of the bar contract; no feature uses it today
    close = np.asarray(close, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    log_close = np.log(close)
    log_volume = np.log1p(np.asarray(volume, dtype=np.float64))
    one_day = _lagged_difference(log_close, 1)
    sma_5 = _rolling_mean(close, 5)
    sma_20 = _rolling_mean(close, 20)

    volume_mean = _rolling_mean(log_volume, 20)
    volume_std = _rolling_std(log_volume, 20)
    with np.errstate(invalid="ignore", divide="ignore"):
        volume_z = np.where(volume_std > _FLAT, (log_volume - volume_mean) / volume_std, 0.0)
    volume_z[np.isnan(volume_std)] = np.nan

    day_range = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        close_location = np.where(day_range > 0, (close - low) / day_range, 0.5)

    columns = [
        one_day,
        _lagged_difference(log_close, 5),
        _lagged_difference(log_close, 20),
        sma_5 / sma_20 - 1.0,
        close / sma_20 - 1.0,
        _rolling_std(one_day, 20),
        _rsi(log_close, 14),
        volume_z,
        day_range / close,
        close_location,
    ]
    matrix = np.stack(columns, axis=-1)
    matrix[..., : MIN_BARS - 1, :] = np.nan
    return matrix


def latest_features(*bars: *BarColumns) -> np.ndarray:
    """Features of the last bar, computed from the last MIN_BARS bars only (1 x features)."""
    window = slice(-MIN_BARS, None)
    matrix = compute_features(*(np.asarray(column)[window] for column in bars))
    return matrix[-1:]


def latest_features_of_many(*bars: *BarColumns) -> np.ndarray:
    """Features of the last bar of each series, from (series x MIN_BARS) arrays of their last
    MIN_BARS bars, in one pass (series x features); row i equals `latest_features` of series i.
    """
    return compute_features(*bars)[:, -1, :]
