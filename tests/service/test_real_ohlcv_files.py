"""Real public OHLCV files that nobody here wrote, as a registry package ships them
(backtesting's GOOG.csv, daily, and EURUSD.csv, hourly: both with the timestamps in a leading
unnamed column, as pandas writes a DatetimeIndex), through `train` and `/v1/predict/bars`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date, datetime
from importlib.metadata import files
from pathlib import Path

import numpy as np
import pytest
from serving_kit import Server

from nepse_predictor.data import load_ohlcv
from nepse_predictor.errors import DataError
from nepse_predictor.features import MIN_BARS, latest_features
from nepse_predictor.model import load_model


def shipped(name: str) -> Path:
    [entry] = [f for f in files("backtesting") or () if f.name == name]
    return Path(entry.locate())


DAILY = shipped("GOOG.csv")
HOURLY = shipped("EURUSD.csv")


def records(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("path", [DAILY, HOURLY], ids=["daily", "hourly"])
def test_a_leading_unnamed_timestamp_column_is_read_as_the_dates(path: Path) -> None:
    header, *rows = records(path)
    assert header[0] == ""  # the file is as it ships: no name on the timestamp column
    [series] = load_ohlcv(path).series
    assert len(series.dates) == len(rows)
    assert series.close[-1] == float(rows[-1][4])
    first = series.dates[0]
    if path is DAILY:
        assert type(first) is date and first.isoformat() == rows[0][0]
    else:
        assert isinstance(first, datetime) and first == datetime.fromisoformat(rows[0][0])
        assert len({stamp.date() for stamp in series.dates}) < len(series.dates)


@pytest.mark.parametrize("path", [DAILY, HOURLY], ids=["daily", "hourly"])
def test_train_on_a_real_file(path: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nepse_predictor.cli",
            "train",
            "--data",
            str(path),
            "--out",
            str(tmp_path),
            "--version",
            "real",
            "--no-joblib",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert 0.0 <= summary["test_auc"] <= 1.0
    metadata = json.loads((tmp_path / "real" / "metadata.json").read_text())
    assert metadata["training_data"]["rows"] == len(records(path)) - 1
    assert metadata["metrics"]["rows"]["test"] > 0
    load_model(tmp_path / "real")  # verifies


@pytest.mark.parametrize("path", [DAILY, HOURLY], ids=["daily", "hourly"])
def test_predict_from_the_last_bars_of_a_real_file(server: Server, trained_model, path) -> None:
    _, *rows = records(path)
    recent = rows[-(MIN_BARS + 9) :]
    bars = [
        {
            "date": row[0],
            "open": float(row[1]),
            "high": float(row[2]),
            "low": float(row[3]),
            "close": float(row[4]),
            "volume": float(row[5]),
        }
        for row in recent
    ]
    response = server.post("/v1/predict/bars", {"series": [{"symbol": path.stem, "bars": bars}]})
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    assert prediction["as_of"] == rows[-1][0]
    columns = [
        np.array([bar[k] for bar in bars]) for k in ("open", "high", "low", "close", "volume")
    ]
    expected = load_model(trained_model).predict_proba(latest_features(*columns).astype(np.float32))
    assert prediction["probability"] == pytest.approx(float(expected[0]), abs=1e-6)


def test_a_real_file_with_a_repeated_hour_is_refused_naming_both_rows(tmp_path: Path) -> None:
    header, *rows = records(HOURLY)
    rows.insert(11, rows[10])
    broken = tmp_path / "EURUSD.csv"
    with broken.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    with pytest.raises(DataError, match=rf"row 13: duplicate date {rows[10][0]} .*row 12"):
        load_ohlcv(broken)


def test_an_unnamed_first_column_that_holds_no_dates_is_named(tmp_path: Path) -> None:
    header, *rows = records(DAILY)
    numbered = tmp_path / "numbered.csv"
    with numbered.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *([str(i), *row[1:]] for i, row in enumerate(rows))])
    with pytest.raises(DataError, match=r"row 2: the unnamed first column \(read as the dates\)"):
        load_ohlcv(numbered)


def test_timestamps_mixing_utc_offsets_and_none_are_refused(tmp_path: Path) -> None:
    header, *rows = records(HOURLY)
    rows[5][0] += "+00:00"
    mixed = tmp_path / "mixed.csv"
    with mixed.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    with pytest.raises(DataError, match=r"row 7: .*mixes timestamps with and without a UTC"):
        load_ohlcv(mixed)
