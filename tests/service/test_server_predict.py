"""Predictions over HTTP from a real uvicorn server: /v1/predict, /v1/predict/bars, headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from serving_kit import Server, example_row, oip_body, sample_series

from nepse_predictor.features import FEATURE_NAMES, MIN_BARS, latest_features
from nepse_predictor.model import load_model


@pytest.fixture(scope="module")
def reference(trained_model: Path):
    """The same model loaded in-process, to check the server's answers."""
    return load_model(trained_model, "onnx")


def rows_matrix(rows: list[dict[str, float]]) -> np.ndarray:
    return np.array([[row[n] for n in FEATURE_NAMES] for row in rows], dtype=np.float32)


def test_one_row_is_predicted_with_the_loaded_model(server: Server, reference) -> None:
    row = example_row()
    response = server.post("/v1/predict", {"features": row})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = float(reference.predict_proba(rows_matrix([row]))[0])
    assert body["model_version"] == reference.version
    assert body["model_name"] == "nepse-predictor"
    assert body["track"] == "canary"
    [prediction] = body["predictions"]
    assert prediction["probability"] == pytest.approx(expected, abs=1e-6)
    assert prediction["label"] == int(expected >= 0.5)
    assert prediction["direction"] == ("up" if expected >= 0.5 else "down")


def test_a_batch_answers_every_row_in_order(server: Server, reference) -> None:
    rows = [example_row(shift) for shift in np.linspace(-0.9, 3.0, 25)]
    response = server.post("/v1/predict", {"instances": rows})
    assert response.status_code == 200, response.text
    got = [p["probability"] for p in response.json()["predictions"]]
    expected = reference.predict_proba(rows_matrix(rows))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_large_batch_is_answered_off_the_event_loop(server: Server, reference) -> None:
    rng = np.random.default_rng(7)
    rows = [example_row(float(s)) for s in rng.normal(0, 1, 3000)]
    response = server.post("/v1/predict", {"instances": rows})
    assert response.status_code == 200
    got = np.array([p["probability"] for p in response.json()["predictions"]])
    np.testing.assert_allclose(got, reference.predict_proba(rows_matrix(rows)), atol=1e-6)


def test_every_response_names_model_version_track_and_request_id(server: Server) -> None:
    for method, path, body in [
        ("GET", "/health", None),
        ("GET", "/ready", None),
        ("GET", "/metrics", None),
        ("GET", "/no/such/path", None),
        ("POST", "/v1/predict", {"features": example_row()}),
        ("POST", "/v1/predict", {"features": {"ret_1": "x"}}),
        ("POST", "/v2/models/nepse-predictor/infer", oip_body([example_row()])),
    ]:
        response = server.client.get(path) if method == "GET" else server.post(path, body)
        assert response.headers["x-model-version"] == "v1", path
        assert response.headers["x-track"] == "canary", path
        assert len(response.headers["x-request-id"]) == 32, path


def test_a_sent_request_id_is_propagated(server: Server) -> None:
    response = server.post(
        "/v1/predict", {"features": example_row()}, headers={"x-request-id": "abc-123:xyz"}
    )
    assert response.headers["x-request-id"] == "abc-123:xyz"
    assert response.json()["request_id"] == "abc-123:xyz"


def test_an_unsafe_request_id_is_replaced(server: Server) -> None:
    response = server.post(
        "/v1/predict", {"features": example_row()}, headers={"x-request-id": "a b\tc" + "x" * 200}
    )
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    assert " " not in rid and len(rid) == 32


def test_bars_are_turned_into_features_by_the_training_feature_function(
    server: Server, reference
) -> None:
    series = sample_series()
    request = {"series": [{"symbol": s, "bars": bars} for s, bars in series.items()]}
    response = server.post("/v1/predict/bars", request)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["symbol"] for p in predictions] == list(series)
    for prediction, bars in zip(predictions, series.values(), strict=True):
        columns = [
            np.array([b[k] for b in bars]) for k in ("open", "high", "low", "close", "volume")
        ]
        features = latest_features(*columns).astype(np.float32)
        expected = float(reference.predict_proba(features)[0])
        assert prediction["probability"] == pytest.approx(expected, abs=1e-6)
        assert prediction["as_of"] == bars[-1]["date"]

    # The same features sent by name give the same answer.
    bars = next(iter(series.values()))
    columns = [np.array([b[k] for b in bars]) for k in ("open", "high", "low", "close", "volume")]
    named = dict(zip(FEATURE_NAMES, latest_features(*columns)[0].tolist(), strict=True))
    by_name = server.post("/v1/predict", {"features": named}).json()["predictions"][0]
    assert by_name["probability"] == pytest.approx(predictions[0]["probability"], abs=1e-6)


def test_only_the_last_min_bars_matter(server: Server) -> None:
    bars = next(iter(sample_series(90).values()))
    full = server.post("/v1/predict/bars", {"series": [{"symbol": "X", "bars": bars}]}).json()
    recent = server.post(
        "/v1/predict/bars", {"series": [{"symbol": "X", "bars": bars[-MIN_BARS:]}]}
    ).json()
    assert full["predictions"][0]["probability"] == recent["predictions"][0]["probability"]


def test_many_series_in_one_request(server: Server, reference) -> None:
    bars = next(iter(sample_series(30).values()))
    rng = np.random.default_rng(1)
    series = []
    for i in range(300):
        scale = float(rng.uniform(0.5, 2.0))
        scaled = [
            {**bar, **{k: bar[k] * scale for k in ("open", "high", "low", "close")}} for bar in bars
        ]
        series.append({"symbol": f"S{i}", "bars": scaled})
    response = server.post("/v1/predict/bars", {"series": series})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["symbol"] for p in predictions] == [s["symbol"] for s in series]
    last = series[-1]["bars"]
    columns = [np.array([b[k] for b in last]) for k in ("open", "high", "low", "close", "volume")]
    expected = float(reference.predict_proba(latest_features(*columns).astype(np.float32))[0])
    assert predictions[-1]["probability"] == pytest.approx(expected, abs=1e-6)
