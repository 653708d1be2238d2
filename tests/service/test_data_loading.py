"""Price-history CSV loading: accepted shapes and the errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nepse_predictor.data import MIN_ROWS_PER_SYMBOL, load_ohlcv
from nepse_predictor.errors import DataError
from nepse_predictor.sample_data import BUNDLED_SAMPLE, generate, write_csv


def _rows(days: int = MIN_ROWS_PER_SYMBOL + 5, symbols: list[str] | None = None):
    return generate(symbols or ["NABIL"], days=days, seed=3)


def _write(tmp_path: Path, header: str, lines: list[str]) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _as_lines(rows) -> list[str]:
    return [
        f"{r['Date']},{r['Open']},{r['High']},{r['Low']},{r['Close']},{r['Volume']}" for r in rows
    ]


def test_loads_the_bundled_sample_as_one_series_per_symbol():
    history = load_ohlcv(BUNDLED_SAMPLE)
    assert [s.symbol for s in history.series] == ["NABIL", "NICA", "NTC", "UPPER", "CHCL", "HIDCL"]
    assert history.rows == sum(len(s.dates) for s in history.series)
    assert len(history.sha256) == 64


def test_accepts_any_letter_case_and_a_leading_unnamed_index_column(tmp_path):
    rows = _rows()
    lines = [f"{i},{line}" for i, line in enumerate(_as_lines(rows))]
    path = _write(tmp_path, ",DATE,open,High,LOW,close,VoLuMe", lines)
    history = load_ohlcv(path)
    assert history.series[0].symbol == "NEPSE"
    assert history.series[0].close[0] == rows[0]["Close"]


def test_names_the_missing_columns(tmp_path):
    path = _write(tmp_path, "Date,Open,High,Close", ["2024-01-01,1,2,1.5"])
    with pytest.raises(DataError, match=r"prices.csv: missing column\(s\) Low, Volume"):
        load_ohlcv(path)


def test_names_the_row_and_column_of_a_non_numeric_value(tmp_path):
    lines = _as_lines(_rows())
    lines[3] = lines[3].replace(lines[3].split(",")[4], "n/a", 1)
    path = _write(tmp_path, "Date,Open,High,Low,Close,Volume", lines)
    with pytest.raises(DataError, match=r"row 5: column 'Close': 'n/a' is not a number"):
        load_ohlcv(path)


def test_rejects_nan_and_infinity(tmp_path):
    lines = _as_lines(_rows())
    parts = lines[0].split(",")
    parts[5] = "inf"
    lines[0] = ",".join(parts)
    path = _write(tmp_path, "Date,Open,High,Low,Close,Volume", lines)
    with pytest.raises(DataError, match=r"row 2: column 'Volume': 'inf' is not a finite number"):
        load_ohlcv(path)


def test_names_unsorted_dates(tmp_path):
    lines = _as_lines(_rows())
    lines[4], lines[5] = lines[5], lines[4]
    path = _write(tmp_path, "Date,Open,High,Low,Close,Volume", lines)
    with pytest.raises(DataError, match=r"row 7: dates are not sorted for symbol NEPSE"):
        load_ohlcv(path)


def test_names_duplicate_dates_and_both_rows(tmp_path):
    lines = _as_lines(_rows())
    lines.insert(3, lines[2])
    path = _write(tmp_path, "Date,Open,High,Low,Close,Volume", lines)
    with pytest.raises(DataError, match=r"row 5: duplicate date .* \(also on row 4\)"):
        load_ohlcv(path)


def test_says_how_many_rows_the_feature_windows_need(tmp_path):
    path = tmp_path / "short.csv"
    write_csv(generate(["NTC"], days=MIN_ROWS_PER_SYMBOL - 1), path)
    with pytest.raises(
        DataError,
        match=rf"symbol NTC has {MIN_ROWS_PER_SYMBOL - 1} rows; "
        rf"at least {MIN_ROWS_PER_SYMBOL} are needed",
    ):
        load_ohlcv(path)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (1, "-5", r"column 'Open': price must be positive"),
        (2, "0.5", r"column 'High': 0.5 is below"),
        (5, "-1", r"column 'Volume': must not be negative"),
    ],
)
def test_rejects_impossible_bars(tmp_path, column, value, message):
    lines = _as_lines(_rows())
    parts = lines[0].split(",")
    parts[column] = value
    lines[0] = ",".join(parts)
    path = _write(tmp_path, "Date,Open,High,Low,Close,Volume", lines)
    with pytest.raises(DataError, match=message):
        load_ohlcv(path)


def test_names_a_bad_date(tmp_path):
    lines = _as_lines(_rows())
    lines[0] = "01/13/2024" + lines[0][10:]
    path = _write(tmp_path, "Date,Open,High,Low,Close,Volume", lines)
    with pytest.raises(DataError, match=r"row 2: column 'Date': '01/13/2024' is not a date"):
        load_ohlcv(path)


def test_reports_an_empty_file_and_a_missing_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        load_ohlcv(empty)
    with pytest.raises(DataError, match="no such file"):
        load_ohlcv(tmp_path / "absent.csv")
