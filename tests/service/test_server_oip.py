"""Open Inference Protocol v2 routes, as KServe and MLServer clients call them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from serving_kit import Server, example_row, oip_body

from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.model import load_model

INFER = "/v2/models/nepse-predictor/infer"


@pytest.fixture(scope="module")
def reference(trained_model: Path):
    return load_model(trained_model, "onnx")


def matrix(rows: list[dict[str, float]]) -> np.ndarray:
    return np.array([[row[n] for n in FEATURE_NAMES] for row in rows], dtype=np.float32)


def test_server_metadata_and_health(server: Server) -> None:
    meta = server.client.get("/v2").json()
    assert meta["name"] == "nepse-predictor" and meta["extensions"] == ["binary_tensor_data"]
    assert server.client.get("/v2/health/live").json() == {"live": True}
    assert server.client.get("/v2/health/ready").json() == {"ready": True}


def test_model_metadata_describes_inputs_and_outputs(server: Server) -> None:
    meta = server.client.get("/v2/models/nepse-predictor").json()
    assert meta["name"] == "nepse-predictor"
    assert meta["versions"] == ["v1"]
    assert meta["platform"] == "xgboost_xgboost"  # the trees of model.ubj, the default backend
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 10]}]
    assert {o["name"] for o in meta["outputs"]} == {"probability", "label"}
    assert meta["parameters"]["feature_names"] == list(FEATURE_NAMES)
    assert server.client.get("/v2/models/nepse-predictor/versions/v1").status_code == 200
    missing = server.client.get("/v2/models/nepse-predictor/versions/v9")
    assert missing.status_code == 404 and "'v9'" in missing.json()["error"]
    assert server.client.get("/v2/models/other").status_code == 404
    assert server.client.get("/v2/models/other/ready").status_code == 404


def test_infer_on_one_matrix_tensor(server: Server, reference) -> None:
    rows = [example_row(s) for s in (-0.5, 0.0, 0.7)]
    response = server.post(INFER, oip_body(rows, id="req-42"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "nepse-predictor"
    assert body["model_version"] == "v1"
    assert body["id"] == "req-42"
    [output] = body["outputs"]
    assert output["name"] == "probability" and output["datatype"] == "FP32"
    assert output["shape"] == [3]
    np.testing.assert_allclose(output["data"], reference.predict_proba(matrix(rows)), atol=1e-6)


def test_infer_without_id_answers_with_the_request_id(server: Server) -> None:
    response = server.post(INFER, oip_body([example_row()]), headers={"x-request-id": "r-1"})
    assert response.json()["id"] == "r-1"


def test_infer_accepts_nested_fp64_data_and_returns_labels_on_request(server, reference) -> None:
    rows = [example_row(0.2), example_row(-0.2)]
    nested = [[row[n] for n in FEATURE_NAMES] for row in rows]
    body = {
        "inputs": [{"name": "x", "shape": [2, 10], "datatype": "FP64", "data": nested}],
        "outputs": [{"name": "label"}, {"name": "probability"}],
        "parameters": {"content_type": "np"},
    }
    response = server.post(INFER, body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    p = reference.predict_proba(matrix(rows))
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["data"] == [int(v >= 0.5) for v in p]
    np.testing.assert_allclose(outputs["probability"]["data"], p, atol=1e-6)


def test_infer_accepts_one_tensor_per_feature_in_any_order(server: Server, reference) -> None:
    rows = [example_row(0.1), example_row(0.9)]
    inputs = [
        {
            "name": n,
            "shape": [2, 1] if i % 2 else [2],
            "datatype": "FP32",
            "data": [row[n] for row in rows],
        }
        for i, n in enumerate(reversed(FEATURE_NAMES))
    ]
    response = server.post(INFER, {"inputs": inputs})
    assert response.status_code == 200, response.text
    data = response.json()["outputs"][0]["data"]
    np.testing.assert_allclose(data, reference.predict_proba(matrix(rows)), atol=1e-6)


def test_versioned_infer_route(server: Server) -> None:
    ok = server.post("/v2/models/nepse-predictor/versions/v1/infer", oip_body([example_row()]))
    assert ok.status_code == 200
    wrong = server.post("/v2/models/nepse-predictor/versions/v0/infer", oip_body([example_row()]))
    assert wrong.status_code == 404


def test_v1_and_v2_give_the_same_probability(server: Server) -> None:
    row = example_row(0.33)
    v1 = server.post("/v1/predict", {"features": row}).json()["predictions"][0]["probability"]
    v2 = server.post(INFER, oip_body([row])).json()["outputs"][0]["data"][0]
    assert v1 == pytest.approx(v2, abs=1e-7)
