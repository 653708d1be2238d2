"""What the server answers is what its OpenAPI document says: each response decodes as the
shape `response_shapes` documents for it, with no member the shape does not name."""

from __future__ import annotations

import msgspec
import pytest
from serving_kit import Server, example_row, oip_body, sample_series

from nepse_predictor import response_shapes as shapes

INFER = "/v2/models/nepse-predictor/infer"


@pytest.mark.parametrize(
    ("method", "path", "body", "shape"),
    [
        ("POST", "/v1/predict", {"features": example_row()}, shapes.PredictResponse),
        ("POST", "/v1/predict", {"instances": [example_row()] * 3}, shapes.PredictResponse),
        (
            "POST",
            "/v1/predict/bars",
            {"series": [{"symbol": s, "bars": b} for s, b in sample_series(40).items()]},
            shapes.BarsResponse,
        ),
        ("POST", INFER, oip_body([example_row()] * 2), shapes.InferenceResponse),
        (
            "POST",
            INFER,
            oip_body([example_row()], outputs=[{"name": "probability"}, {"name": "label"}]),
            shapes.InferenceResponse,
        ),
        ("GET", "/v2", None, shapes.ServerMetadataResponse),
        ("GET", "/v2/health/live", None, shapes.LiveResponse),
        ("GET", "/v2/health/ready", None, shapes.ReadyResponse),
        ("GET", "/v2/models/nepse-predictor", None, shapes.ModelMetadataResponse),
        ("GET", "/v2/models/nepse-predictor/ready", None, shapes.ModelReadyResponse),
        ("POST", "/v1/predict", {"features": {}}, shapes.ErrorResponse),
        ("POST", INFER, {"inputs": []}, shapes.ErrorResponse),
        ("GET", "/v2/models/other", None, shapes.ErrorResponse),
    ],
)
def test_responses_have_their_documented_shape(
    server: Server, method: str, path: str, body, shape: type
) -> None:
    response = server.post(path, body) if method == "POST" else server.client.get(path)
    assert response.headers["content-type"].startswith("application/json")
    msgspec.json.decode(response.content, type=shape)


def test_every_response_shape_is_in_the_openapi_document(server: Server) -> None:
    components = server.client.get("/openapi.json").json()["components"]["schemas"]
    for shape in shapes.RESPONSE_SHAPES:
        assert shape.__name__ in components
