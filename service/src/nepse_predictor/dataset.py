"""From price history to a time-ordered, leakage-free training and evaluation set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from nepse_predictor.data import PriceHistory
from nepse_predictor.errors import DataError
from nepse_predictor.features import MIN_BARS, compute_features


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_end: date
    test_start: date


def _as_datetime64(stamps: tuple[date, ...]) -> np.ndarray:
    """Dates as datetime64[D]; intraday timestamps as datetime64[s] (in UTC when they carry
    an offset)."""
    if not any(isinstance(stamp, datetime) for stamp in stamps):
        return np.array(stamps, dtype="datetime64[D]")
    naive = [
        s.astimezone(UTC).replace(tzinfo=None) if isinstance(s, datetime) and s.tzinfo else s
        for s in stamps
    ]
    return np.array(naive, dtype="datetime64[s]")


def labelled_rows(history: PriceHistory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, next-session direction labels (1 = close rises) and the bars' timestamps,
    over all symbols; a session is a day for daily bars and a bar's interval for intraday."""
    features, labels, dates = [], [], []
    for series in history.series:
        matrix = compute_features(series.open, series.high, series.low, series.close, series.volume)
        # The last bar has no next session, so no label.
        usable = slice(MIN_BARS - 1, len(series.dates) - 1)
        features.append(matrix[usable])
        labels.append((series.close[1:] > series.close[:-1])[MIN_BARS - 1 :].astype(np.int32))
        dates.append(_as_datetime64(series.dates[usable]))
    return np.vstack(features), np.concatenate(labels), np.concatenate(dates)


def time_split(history: PriceHistory, test_fraction: float = 0.2) -> Split:
    """Train on the earlier sessions and test on the later ones.

    The label of a row is the next session's move, so the last training session's label would
    come from the first test session; that session is purged from training.
    """
    x, y, dates = labelled_rows(history)
    sessions = np.unique(dates)
    if len(sessions) < 10:
        raise DataError(
            f"{history.path}: only {len(sessions)} labelled sessions; need at least 10 to "
            "split into training and test periods"
        )
    cut = int(len(sessions) * (1 - test_fraction))
    test_start = sessions[cut]
    train_end = sessions[cut - 2]
    train = dates <= train_end
    test = dates >= test_start
    if len(np.unique(y[train])) < 2:
        raise DataError(f"{history.path}: the training period has only one kind of label")
    return Split(
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        train_end=train_end.astype(date),
        test_start=test_start.astype(date),
    )
