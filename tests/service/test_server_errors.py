"""Bad input gets 422 (or 413) naming the field, never a 5xx or a traceback, and the server
keeps serving."""

from __future__ import annotations

import json

import pytest
from serving_kit import Server, example_row, oip_body, sample_series

from nepse_predictor.features import FEATURE_NAMES

INFER = "/v2/models/nepse-predictor/infer"


def check_error(response, status: int, field: str, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field, body
    assert body["error"].startswith(f"{field}: "), body
    for word in words:
        assert word in body["error"], body
    assert "Traceback" not in response.text
    return body


def with_value(name: str, value) -> dict:
    row = example_row()
    row[name] = value
    return row


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0.1", ["expected a number", "string"]),
        (True, ["expected a number", "boolean"]),
        (None, ["expected a number", "null"]),
        ([1.0], ["expected a number", "array"]),
        ({"v": 1}, ["expected a number", "object"]),
        (1e39, ["outside the float32 range"]),
        (10**400, ["outside the float32 range"]),
    ],
)
def test_wrong_types_name_the_feature(server: Server, value, words) -> None:
    body = json.dumps({"features": with_value("rsi_14", value)})
    check_error(server.post("/v1/predict", body), 422, "features.rsi_14", *words)


@pytest.mark.parametrize(
    ("token", "word"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")]
)
def test_non_finite_numbers_name_the_feature(server: Server, token: str, word: str) -> None:
    text = json.dumps({"features": with_value("ret_5", 0.5)}).replace("0.5", token, 1)
    check_error(server.post("/v1/predict", text), 422, "features.ret_5", word, "not allowed")


def test_a_missing_feature_is_named(server: Server) -> None:
    row = example_row()
    del row["volume_z_20"]
    check_error(
        server.post("/v1/predict", {"features": row}), 422, "features.volume_z_20", "missing"
    )


def test_an_unknown_feature_is_named(server: Server) -> None:
    row = {**example_row(), "pe_ratio": 3.0}
    check_error(
        server.post("/v1/predict", {"features": row}), 422, "features.pe_ratio", "unknown feature"
    )


def test_a_bad_row_in_a_batch_is_named_by_index(server: Server) -> None:
    rows = [example_row(), example_row(), with_value("close_location", "high")]
    check_error(server.post("/v1/predict", {"instances": rows}), 422, "instances[2].close_location")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"{", "body"),
        (b"[1, 2]", "body"),
        (b'"text"', "body"),
        (b'{"features": {}, "instances": []}', "body"),
        (b'{"rows": []}', "rows"),
        (b'{"instances": []}', "instances"),
        (b'{"instances": {}}', "instances"),
        (b'{"instances": [1]}', "instances[0]"),
        (b'{"features": [1, 2]}', "features"),
        (b"\xff\xfe", "body"),
    ],
)
def test_malformed_v1_bodies_are_422(server: Server, body: bytes, field: str) -> None:
    check_error(server.post("/v1/predict", body), 422, field)


def test_too_many_rows_is_413(server: Server) -> None:
    # The server in this module keeps the default limit; a small one is tested below.
    rows = [example_row()] * 10_001
    response = server.post("/v1/predict", {"instances": rows})
    check_error(response, 413, "instances", "10001 rows", "NEPSE_MAX_BATCH_ROWS")


def test_limits_are_configurable(start_server, trained_model) -> None:
    small = start_server(trained_model, max_batch_rows=5, max_body_bytes=4096)
    check_error(small.post("/v1/predict", {"instances": [example_row()] * 6}), 413, "instances")
    check_error(small.post(INFER, oip_body([example_row()] * 6)), 413, "inputs[0].shape[0]")
    series = {"series": [{"symbol": "A", "bars": []}] * 6}
    check_error(small.post("/v1/predict/bars", series), 413, "series")
    big = b'{"features": {' + b" " * 5000 + b"}}"
    check_error(small.post("/v1/predict", big), 413, "body", "NEPSE_MAX_BODY_BYTES")

    # A streamed (chunked) body with no Content-Length is cut off at the limit too.
    def chunks():
        for _ in range(10):
            yield b" " * 1000

    response = small.client.post("/v1/predict", content=chunks())
    check_error(response, 413, "body")
    assert small.client.get("/ready").status_code == 200


def test_the_bars_a_request_may_hold_are_bounded(start_server, trained_model) -> None:
    bounded = start_server(trained_model, max_bars=100)
    bars = next(iter(sample_series(50).values()))
    within = {"series": [{"symbol": "A", "bars": bars}, {"symbol": "B", "bars": bars}]}
    assert bounded.post("/v1/predict/bars", within).status_code == 200
    beyond = {"series": [{"symbol": s, "bars": bars} for s in "ABC"]}
    check_error(
        bounded.post("/v1/predict/bars", beyond), 413, "series", "150 bars", "NEPSE_MAX_BARS"
    )


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "inputs", ["non-empty list"]),
        ({"inputs": []}, "inputs", []),
        ({"inputs": [1]}, "inputs[0]", ["tensor object"]),
        ({"inputs": [{"name": "x"}]}, "inputs[0].shape", ["missing"]),
        (
            {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "INT8", "data": [1] * 10}]},
            "inputs[0].datatype",
            ["FP32", "FP64"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 9], "datatype": "FP32", "data": [1] * 9}]},
            "inputs[0].shape",
            ["[N, 10]"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, -10], "datatype": "FP32", "data": []}]},
            "inputs[0].shape[1]",
            ["non-negative"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [2, 10], "datatype": "FP32", "data": [1] * 10}]},
            "inputs[0].data",
            ["has 10 values", "needs 20"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [0, 10], "datatype": "FP32", "data": []}]},
            "inputs[0].shape[0]",
            ["at least one row"],
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP32", "data": "abc"}]},
            "inputs[0].data",
            ["list of numbers"],
        ),
        (
            {
                "inputs": [
                    {"name": "x", "shape": [1, 10], "datatype": "FP32", "data": [1] * 9 + ["1"]}
                ]
            },
            "inputs[0].data[9] (row 0, close_location)",
            ["string"],
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 10],
                        "datatype": "FP32",
                        "data": [1] * 10,
                        "colour": 1,
                    }
                ]
            },
            "inputs[0].colour",
            ["unknown field"],
        ),
        (
            {**oip_body([example_row()]), "outputs": [{"name": "logits"}]},
            "outputs[0].name",
            ["probability", "label"],
        ),
        ({**oip_body([example_row()]), "id": 5}, "id", ["string"]),
        ({**oip_body([example_row()]), "extra": 5}, "extra", ["unknown field"]),
        (
            {"inputs": [{"name": "ret_1", "shape": [1], "datatype": "FP32", "data": [0.1]}]},
            "inputs",
            ["missing", "ret_5"],
        ),
    ],
)
def test_bad_inference_requests_name_the_field(server: Server, body, field, words) -> None:
    check_error(server.post(INFER, body), 422, field, *words)


def test_per_feature_tensors_must_be_complete_and_known(server: Server) -> None:
    def tensor(name: str, rows: int = 2) -> dict:
        return {"name": name, "shape": [rows], "datatype": "FP64", "data": [0.1] * rows}

    names = list(FEATURE_NAMES)
    check_error(
        server.post(INFER, {"inputs": [tensor(n) for n in names[:-1]]}),
        422,
        "inputs",
        "close_location",
    )
    unknown = [tensor(n) for n in names[:-1]] + [tensor("colour")]
    check_error(server.post(INFER, {"inputs": unknown}), 422, "inputs[9].name", "not a feature")
    twice = [tensor(n) for n in names] + [tensor(names[0])]
    check_error(server.post(INFER, {"inputs": twice}), 422, "inputs[10].name", "twice")
    uneven = [tensor(n) for n in names[:-1]] + [tensor(names[-1], rows=3)]
    check_error(server.post(INFER, {"inputs": uneven}), 422, "inputs[9].shape[0]", "2 rows")


def test_nan_in_a_tensor_is_named_by_row_and_feature(server: Server) -> None:
    body = json.dumps(oip_body([example_row(), example_row()]))
    body = body.replace(str(example_row()["rsi_14"]), "NaN", 2)
    check_error(server.post(INFER, body), 422, "inputs[0].data[6] (row 0, rsi_14)", "NaN")


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda b: b[3].update(close=-1.0), "series[0].bars[3].close", ["positive"]),
        (lambda b: b[3].update(volume=-5), "series[0].bars[3].volume", ["negative"]),
        (lambda b: b[3].update(high=0.5), "series[0].bars[3].high", ["below"]),
        (lambda b: b[3].update(low=b[3]["high"]), "series[0].bars[3].low", ["above"]),
        (lambda b: b[3].update(open="x"), "series[0].bars[3].open", ["string"]),
        (lambda b: b[3].pop("close"), "series[0].bars[3].close", ["missing"]),
        (lambda b: b[3].update(vwap=1.0), "series[0].bars[3].vwap", ["unknown field"]),
        (lambda b: b[3].update(date="2020-13-45"), "series[0].bars[3].date", ["YYYY-MM-DD"]),
        (lambda b: b[3].update(date=b[2]["date"]), "series[0].bars[3].date", ["oldest first"]),
        (lambda b: b[3].pop("date"), "series[0].bars[3].date", ["all bars or none"]),
        (lambda b: b.__delitem__(slice(5, None)), "series[0].bars", ["at least 21"]),
    ],
)
def test_bad_bars_name_the_bar_and_field(server: Server, mutate, field, words) -> None:
    bars = next(iter(sample_series(30).values()))
    mutate(bars)
    check_error(
        server.post("/v1/predict/bars", {"series": [{"symbol": "X", "bars": bars}]}),
        422,
        field,
        *words,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "series"),
        ({"series": []}, "series"),
        ({"series": [1]}, "series[0]"),
        ({"series": [{"symbol": "", "bars": []}]}, "series[0].symbol"),
        ({"series": [{"symbol": "A", "bars": 3}]}, "series[0].bars"),
        ({"series": [{"symbol": "A", "x": 1, "bars": []}]}, "series[0].x"),
        ({"symbol": "A"}, "symbol"),
    ],
)
def test_malformed_bar_requests_are_422(server: Server, body, field: str) -> None:
    check_error(server.post("/v1/predict/bars", body), 422, field)


def test_the_server_keeps_serving_after_bad_input(server: Server) -> None:
    for body in [b"{", b"[]", b'{"features": 1}', b"\x00" * 100, b'{"inputs": [[[[[]]]]]}']:
        assert server.post("/v1/predict", body).status_code == 422
        assert server.post(INFER, body).status_code == 422
    assert server.client.get("/health").status_code == 200
    assert server.post("/v1/predict", {"features": example_row()}).status_code == 200
    assert server.process.poll() is None
    assert "Traceback" not in server.log_text()


def test_deep_nesting_is_rejected_not_crashing(server: Server) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = server.post(INFER, body)
    assert response.status_code == 422
    assert server.client.get("/health").status_code == 200


def test_wrong_methods_and_paths_are_4xx(server: Server) -> None:
    assert server.client.get("/v1/predict").status_code == 405
    assert server.client.get(INFER).status_code == 405
    assert server.client.get("/nothing").status_code == 404
    other = server.post("/v2/models/other/infer", oip_body([example_row()]))
    assert other.status_code == 404
    assert "'other' is not served here" in other.json()["error"]


def test_a_client_that_hangs_up_mid_body_is_logged_and_forgotten(server: Server) -> None:
    import socket
    import time

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
            b'X-Request-Id: hung-up\r\n\r\n{"features": '
        )
        time.sleep(0.2)
    time.sleep(0.3)
    [line] = [line for line in server.log_lines() if line.get("request_id") == "hung-up"]
    assert line["status"] == 499
    assert server.post("/v1/predict", {"features": example_row()}).status_code == 200
