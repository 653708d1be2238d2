"""The request parsers behind the endpoints (no server needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nepse_predictor.bars_request import parse_bars
from nepse_predictor.features import FEATURE_NAMES, MIN_BARS
from nepse_predictor.input_error import InputError
from nepse_predictor.oip_request import parse_infer
from nepse_predictor.v1_request import parse_v1

F = FEATURE_NAMES


def row(value: float = 0.5) -> dict[str, float]:
    return dict.fromkeys(F, value)


def test_v1_one_row_and_batch_keep_feature_order() -> None:
    named = {name: float(i) for i, name in enumerate(reversed(F))}
    one = parse_v1(json.dumps({"features": named}).encode(), 10)
    assert one.dtype == np.float32 and one.shape == (1, len(F))
    assert one[0].tolist() == [named[n] for n in F]
    batch = parse_v1(json.dumps({"instances": [named, row()]}).encode(), 10)
    assert batch.shape == (2, len(F))


def test_integers_are_numbers_but_booleans_are_not() -> None:
    assert parse_v1(json.dumps({"features": dict.fromkeys(F, 3)}).encode(), 1)[0, 0] == 3.0
    with pytest.raises(InputError, match=r"features\.ret_1: expected a number, got boolean"):
        parse_v1(json.dumps({"features": {**row(), "ret_1": True}}).encode(), 1)


def test_batch_limit_is_413() -> None:
    with pytest.raises(InputError) as info:
        parse_v1(json.dumps({"instances": [row()] * 3}).encode(), 2)
    assert info.value.status == 413


@pytest.mark.parametrize("count", [1, 64, 65, 5000])
def test_a_bad_value_is_named_in_small_and_large_tensors(count: int) -> None:
    def body(values: list) -> bytes:
        tensor = {"name": F[0], "shape": [count], "datatype": "FP64", "data": values}
        others = [
            {"name": n, "shape": [count], "datatype": "FP64", "data": [0.5] * count} for n in F[1:]
        ]
        return json.dumps({"inputs": [tensor, *others]}).encode()

    values = [0.25] * count
    assert parse_infer(body(values), count).rows.shape == (count, len(F))
    for bad, word in [
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (1e39, "float32"),
        ("1", "string"),
        (None, "null"),
    ]:
        with pytest.raises(InputError, match=word) as info:
            parse_infer(body([*values[:-1], bad]), count)
        assert info.value.field == f"inputs[0].data[{count - 1}] ({F[0]})"


def test_float32_extremes_are_numbers() -> None:
    rows = parse_infer(
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, len(F)],
                        "datatype": "FP64",
                        "data": [3.0e38, 3.0e38] + [-1.0] * (len(F) - 2),
                    }
                ]
            }
        ).encode(),
        1,
    ).rows
    assert np.isfinite(rows).all()


def test_oip_matrix_flat_and_nested_give_the_same_rows() -> None:
    flat = list(range(2 * len(F)))
    nested = [flat[: len(F)], flat[len(F) :]]
    for data in (flat, nested):
        body = {"inputs": [{"name": "x", "shape": [2, len(F)], "datatype": "FP64", "data": data}]}
        request = parse_infer(json.dumps(body).encode(), 10)
        assert request.rows.shape == (2, len(F))
        assert request.rows[1, 0] == len(F)
        assert [(o.name, o.binary) for o in request.outputs] == [("probability", False)]


def test_oip_per_feature_tensors_are_assembled_in_feature_order() -> None:
    inputs = [
        {"name": n, "shape": [2], "datatype": "FP32", "data": [i, i + 100]} for i, n in enumerate(F)
    ]
    request = parse_infer(json.dumps({"inputs": inputs[::-1], "id": "x"}).encode(), 10)
    assert request.rows[:, 3].tolist() == [3, 103]
    assert request.id == "x"


def test_bars_need_min_bars_and_parse_oldest_first() -> None:
    bars = [
        {"date": f"2026-01-{d:02d}", "open": 10, "high": 11, "low": 9, "close": 10, "volume": 5}
        for d in range(1, MIN_BARS + 2)
    ]
    [series] = parse_bars(json.dumps({"series": [{"symbol": "A", "bars": bars}]}).encode(), 5, 1000)
    assert series.symbol == "A" and series.as_of == bars[-1]["date"]
    assert series.close.shape == (MIN_BARS + 1,)
    with pytest.raises(InputError, match=f"at least {MIN_BARS}"):
        parse_bars(json.dumps({"series": [{"symbol": "A", "bars": bars[:3]}]}).encode(), 5, 1000)


def intraday_bars(count: int, offset: str = "") -> list[dict]:
    return [
        {
            "date": f"2026-01-05T{9 + i // 60:02d}:{i % 60:02d}:00{offset}",
            "open": 10,
            "high": 11,
            "low": 9,
            "close": 10 + (i % 3) / 10,
            "volume": 5,
        }
        for i in range(count)
    ]


def bars_body(*series: list[dict]) -> bytes:
    return json.dumps({"series": [{"symbol": "A", "bars": b} for b in series]}).encode()


def test_intraday_bars_on_one_day_parse_in_time_order() -> None:
    for offset in ("", "+05:45"):
        bars = intraday_bars(MIN_BARS + 5, offset)
        [series] = parse_bars(bars_body(bars), 5, 1000)
        assert series.as_of == bars[-1]["date"]
    spaced = [dict(bar, date=bar["date"].replace("T", " ")) for bar in intraday_bars(MIN_BARS)]
    assert parse_bars(bars_body(spaced), 5, 1000)[0].as_of.endswith("09:20:00")


def test_intraday_bars_out_of_order_or_mixing_offsets_are_named() -> None:
    bars = intraday_bars(MIN_BARS + 2)
    bars[5]["date"] = bars[4]["date"]
    with pytest.raises(InputError, match=r"bars\[5\].date: .* is not after"):
        parse_bars(bars_body(bars), 5, 1000)
    mixed = intraday_bars(MIN_BARS)
    mixed[3]["date"] += "+00:00"
    with pytest.raises(InputError, match=r"bars\[3\].date: mixes timestamps"):
        parse_bars(bars_body(mixed), 5, 1000)


def test_more_bars_than_the_limit_are_refused_before_they_are_read() -> None:
    bars = intraday_bars(MIN_BARS + 10)
    bars[-1]["close"] = "never read"
    with pytest.raises(InputError, match="NEPSE_MAX_BARS") as refused:
        parse_bars(bars_body(bars, bars), 5, 2 * MIN_BARS + 19)
    assert refused.value.status == 413 and refused.value.field == "series"


@pytest.mark.parametrize(
    ("value", "words"),
    [(True, "got boolean"), (float("nan"), "NaN"), (10**400, "float32 range"), (None, "null")],
)
def test_a_bad_value_among_many_good_bars_is_named(value, words) -> None:
    bars = intraday_bars(200)
    bars[150]["volume"] = value
    body = json.dumps({"series": [{"symbol": "A", "bars": bars}]}).encode()
    with pytest.raises(InputError, match=rf"series\[0\].bars\[150\].volume: .*{words}"):
        parse_bars(body, 5, 1000)


def test_error_payload_names_field_and_problem() -> None:
    error = InputError("inputs[0].data[3]", "NaN is not allowed")
    assert json.loads(error.payload()) == {
        "error": "inputs[0].data[3]: NaN is not allowed",
        "field": "inputs[0].data[3]",
    }
