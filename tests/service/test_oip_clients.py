"""Open Inference Protocol clients nobody here wrote, against the real server: KServe's
`InferenceRESTClient` and tritonclient's HTTP client, JSON and binary tensors, request
compression on and off, and the errors they must be able to decode."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from serving_kit import Server, example_row, oip_body
from tritonclient.utils import InferenceServerException

from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.model import load_model

MODEL = "nepse-predictor"
INFER = f"/v2/models/{MODEL}/infer"


@pytest.fixture(scope="module")
def reference(trained_model: Path):
    return load_model(trained_model, "onnx")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.array(
        [[example_row(i / 50)[name] for name in FEATURE_NAMES] for i in range(7)],
        dtype=np.float32,
    )


@pytest.fixture
def triton_client(server: Server):
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield client
    client.close()


def kserve_infer(server: Server, request: InferRequest, version: str | None = None) -> Any:
    async def call() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=10))
        try:
            return await client.infer(f"http://127.0.0.1:{server.port}", request, MODEL)
        finally:
            await client._client.aclose()

    return asyncio.run(call())


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_kserve_rest_client_infers(server: Server, reference, rows, binary: bool) -> None:
    tensor = InferInput("features", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [RequestedOutput("probability", parameters={"binary_data": binary})]
    request = InferRequest(MODEL, [tensor], request_id="k-1", request_outputs=outputs)
    response = kserve_infer(server, request)
    assert response.model_name == MODEL and response.id == "k-1"
    [output] = response.outputs
    assert output.name == "probability" and output.datatype == "FP32"
    assert np.allclose(output.as_numpy(), reference.predict_proba(rows), atol=1e-6)


def test_kserve_rest_client_sees_a_mismatched_body_model_name(server: Server, rows) -> None:
    body = oip_body([example_row()], model_name="another-model")
    response = server.post(INFER, body)
    assert response.status_code == 422
    assert response.json()["field"] == "model_name"
    assert "'nepse-predictor'" in response.json()["error"]


@pytest.mark.parametrize("compression", [None, "gzip", "deflate"])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_infers(
    triton_client, reference, rows, binary: bool, compression: str | None
) -> None:
    tensor = triton.InferInput("features", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("probability", binary_data=binary),
        triton.InferRequestedOutput("label", binary_data=binary),
    ]
    result = triton_client.infer(
        MODEL,
        [tensor],
        outputs=outputs,
        request_id="t-1",
        request_compression_algorithm=compression,
    )
    expected = reference.predict_proba(rows)
    assert np.allclose(result.as_numpy("probability"), expected, atol=1e-6)
    assert result.as_numpy("label").tolist() == (expected >= 0.5).astype(np.int64).tolist()
    assert result.get_response()["id"] == "t-1"


def test_tritonclient_default_outputs_come_back_binary(triton_client, reference, rows) -> None:
    tensor = triton.InferInput("features", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows.astype(np.float64))
    result = triton_client.infer(MODEL, [tensor])
    [output] = result.get_response()["outputs"]
    assert output["parameters"] == {"binary_data_size": 4 * len(rows)}
    assert np.allclose(result.as_numpy("probability"), reference.predict_proba(rows), atol=1e-6)


def test_tritonclient_sees_the_server_and_model(triton_client) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready(MODEL)
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]
    metadata = triton_client.get_model_metadata(MODEL)
    assert metadata["inputs"][0]["shape"] == [-1, len(FEATURE_NAMES)]


def test_tritonclient_decodes_errors_of_unknown_models_and_routes(triton_client, rows) -> None:
    tensor = triton.InferInput("features", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException, match="'other' is not served here"):
        triton_client.infer("other", [tensor])
    # Model configuration is a Triton extension this server does not have: an unknown route.
    with pytest.raises(InferenceServerException, match="no route for GET /v2/models/"):
        triton_client.get_model_config(MODEL)


def test_tritonclient_decodes_an_input_error(triton_client, rows) -> None:
    bad = rows.copy()
    bad[2, 4] = np.nan
    tensor = triton.InferInput("features", list(bad.shape), "FP32")
    tensor.set_data_from_numpy(bad)
    with pytest.raises(InferenceServerException, match=r"value 24.*NaN is not allowed"):
        triton_client.infer(MODEL, [tensor])


def test_unknown_v2_routes_and_methods_answer_oip_errors(server: Server) -> None:
    for response in (
        server.client.get("/v2/models/nepse-predictor/config"),
        server.client.get("/v2/repository/index"),
        server.client.get(INFER),
        server.client.delete("/v2"),
    ):
        assert response.status_code in (404, 405)
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error"}


def binary_body(rows: np.ndarray, **tensor_parameters: Any) -> tuple[bytes, dict[str, str]]:
    raw = rows.astype("<f4").tobytes()
    parameters = {"binary_data_size": len(raw), **tensor_parameters}
    tensor = {"name": "features", "shape": list(rows.shape), "datatype": "FP32"}
    header = orjson.dumps({"inputs": [{**tensor, "parameters": parameters}]})
    return header + raw, {
        "inference-header-content-length": str(len(header)),
        "content-type": "application/octet-stream",
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda body, h: (body, {**h, "inference-header-content-length": "0"}), "Inference-", "1"),
        (
            lambda body, h: (body, {**h, "inference-header-content-length": str(len(body) + 1)}),
            "Inference-Header-Content-Length",
            "size of the JSON header",
        ),
        (
            lambda body, h: (body, {**h, "inference-header-content-length": "lots"}),
            "Inference-Header-Content-Length",
            "not a number",
        ),
        (lambda body, h: (body[:-4], h), "inputs[0].parameters.binary_data_size", "left"),
        (lambda body, h: (body + b"\0" * 4, h), "body", "4 bytes of binary data are left"),
        (
            lambda body, h: (
                body,
                {k: v for k, v in h.items() if k != "inference-header-content-length"},
            ),
            "body",
            "not valid JSON",
        ),
    ],
)
def test_bad_binary_requests_name_the_problem(server: Server, rows, change, field, words) -> None:
    body, headers = change(*binary_body(rows))
    response = server.post(INFER, body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith(field) and words in response.json()["error"]


def test_a_binary_size_that_does_not_fit_the_shape_is_named(server: Server, rows) -> None:
    raw = rows.astype("<f4").tobytes()
    tensor = {"name": "features", "shape": [len(rows) + 1, len(FEATURE_NAMES)], "datatype": "FP32"}
    header = orjson.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]})
    headers = {"inference-header-content-length": str(len(header))}
    response = server.post(INFER, header + raw, headers=headers)
    assert response.status_code == 422
    assert response.json()["field"] == "inputs[0].parameters.binary_data_size"
    assert f"needs {len(raw) + 4 * len(FEATURE_NAMES)} bytes" in response.json()["error"]


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_compression_bomb_gets_413_quickly(server: Server, coding: str) -> None:
    plain = b'{"inputs": [' + b" " * (64 * 1024 * 1024) + b"]}"
    packed = gzip.compress(plain, 9) if coding == "gzip" else zlib.compress(plain, 9)
    assert len(packed) < 1024 * 1024
    response = server.post(INFER, packed, headers={"content-encoding": coding})
    assert response.status_code == 413
    assert "NEPSE_MAX_BODY_BYTES" in response.json()["error"]
    assert response.elapsed.total_seconds() < 2


def test_compressed_bodies_reach_every_prediction_route(server: Server) -> None:
    plain = orjson.dumps({"features": example_row()})
    for coding, packed in (("gzip", gzip.compress(plain)), ("deflate", zlib.compress(plain))):
        response = server.post("/v1/predict", packed, headers={"content-encoding": coding})
        assert response.status_code == 200, response.text
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    packed = raw_deflate.compress(plain) + raw_deflate.flush()
    response = server.post("/v1/predict", packed, headers={"content-encoding": "deflate"})
    assert response.status_code == 200


def test_an_unknown_content_coding_gets_415(server: Server) -> None:
    response = server.post(INFER, b"...", headers={"content-encoding": "br"})
    assert response.status_code == 415
    assert response.json()["field"] == "content-encoding" and "'br'" in response.json()["error"]


def test_corrupt_compressed_data_gets_400(server: Server) -> None:
    packed = gzip.compress(orjson.dumps(oip_body([example_row()])))
    for body in (b"not gzip at all", packed[: len(packed) // 2]):
        response = server.post(INFER, body, headers={"content-encoding": "gzip"})
        assert response.status_code == 400
        assert "gzip" in response.json()["error"]
