"""The synthetic sample: deterministic, NEPSE-like, and the bundled file is its output."""

from __future__ import annotations

import csv
from datetime import date

import numpy as np

from nepse_predictor.sample_data import (
    BUNDLED_SAMPLE,
    CIRCUIT_LIMIT,
    generate,
    trading_days,
    write_csv,
)


def test_the_bundled_sample_is_exactly_the_generator_output(tmp_path):
    regenerated = write_csv(generate(), tmp_path / "sample.csv")
    assert regenerated.read_bytes() == BUNDLED_SAMPLE.read_bytes()


def test_same_seed_same_data_other_seed_other_data():
    assert generate(["NTC"], days=50, seed=7) == generate(["NTC"], days=50, seed=7)
    assert generate(["NTC"], days=50, seed=7) != generate(["NTC"], days=50, seed=8)


def test_sessions_run_sunday_to_thursday():
    days = trading_days(date(2024, 1, 1), 30)
    assert {d.strftime("%A") for d in days} == {
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
    }


def test_daily_moves_respect_the_circuit_breaker():
    with BUNDLED_SAMPLE.open() as handle:
        rows = list(csv.DictReader(handle))
    for symbol in {r["Symbol"] for r in rows}:
        close = np.array([float(r["Close"]) for r in rows if r["Symbol"] == symbol])
        moves = np.abs(np.diff(np.log(close)))
        assert moves.max() <= CIRCUIT_LIMIT + 1e-3
