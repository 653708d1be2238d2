"""The feature function: documented columns, warm-up rows, and training/serving identity."""

from __future__ import annotations

import numpy as np
import pytest

from nepse_predictor import features
from nepse_predictor.data import load_ohlcv
from nepse_predictor.features import (
    FEATURE_NAMES,
    MIN_BARS,
    compute_features,
    latest_features,
    latest_features_of_many,
)
from nepse_predictor.sample_data import BUNDLED_SAMPLE


@pytest.fixture(scope="module")
def series():
    return load_ohlcv(BUNDLED_SAMPLE).series[3]


def _bars(series, end=None):
    sl = slice(None, end)
    return (series.open[sl], series.high[sl], series.low[sl], series.close[sl], series.volume[sl])


def test_every_feature_is_documented_in_the_module():
    assert len(FEATURE_NAMES) >= 6
    for name in FEATURE_NAMES:
        assert f"| {name}" in features.__doc__


def test_rows_before_a_full_window_are_nan_and_the_rest_are_finite(series):
    matrix = compute_features(*_bars(series))
    assert matrix.shape == (len(series.dates), len(FEATURE_NAMES))
    assert np.isnan(matrix[: MIN_BARS - 1]).all()
    assert np.isfinite(matrix[MIN_BARS - 1 :]).all()


def test_serving_from_recent_bars_gives_the_training_features_exactly(series):
    """Training computes over the whole history; serving gets only the last bars."""
    full_history = compute_features(*_bars(series))
    for end in range(MIN_BARS, len(series.dates) + 1, 7):
        served = latest_features(*_bars(series, end))
        np.testing.assert_array_equal(served[0], full_history[end - 1])


def test_many_series_at_once_give_each_series_training_features_exactly(series):
    """The bars endpoint computes all series of a request in one pass over stacked windows."""
    full_history = compute_features(*_bars(series))
    ends = list(range(MIN_BARS, len(series.dates) + 1, 5))
    windows = [np.stack([column[end - MIN_BARS : end] for column in _bars(series)]) for end in ends]
    stacked = np.stack(windows)  # series x OHLCV x bars
    many = latest_features_of_many(*(stacked[:, column, :] for column in range(5)))
    assert many.shape == (len(ends), len(FEATURE_NAMES))
    for row, end in zip(many, ends, strict=True):
        np.testing.assert_array_equal(row, full_history[end - 1])


def test_returns_and_ranges_have_their_documented_values(series):
    matrix = compute_features(*_bars(series))
    t = MIN_BARS + 10
    column = {name: matrix[t, i] for i, name in enumerate(FEATURE_NAMES)}
    close, high, low = series.close, series.high, series.low
    assert column["ret_1"] == pytest.approx(np.log(close[t] / close[t - 1]))
    assert column["ret_20"] == pytest.approx(np.log(close[t] / close[t - 20]))
    assert column["close_sma_20"] == pytest.approx(close[t] / close[t - 19 : t + 1].mean() - 1)
    assert column["range_pct"] == pytest.approx((high[t] - low[t]) / close[t])
    assert 0.0 <= column["close_location"] <= 1.0
    assert np.nanmin(matrix[:, FEATURE_NAMES.index("rsi_14")]) >= 0
    assert np.nanmax(matrix[:, FEATURE_NAMES.index("rsi_14")]) <= 100


def test_flat_prices_give_neutral_rsi_and_zero_volume_score():
    n = MIN_BARS + 3
    flat = np.full(n, 100.0)
    matrix = compute_features(flat, flat, flat, flat, np.full(n, 1000.0))
    row = dict(zip(FEATURE_NAMES, matrix[-1], strict=True))
    assert row["rsi_14"] == 50.0
    assert row["volume_z_20"] == 0.0
    assert row["close_location"] == 0.5
    assert row["volatility_20"] == pytest.approx(0.0, abs=1e-12)
