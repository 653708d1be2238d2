"""Open Inference Protocol v2 (KServe / MLServer / Triton REST), model `nepse-predictor`.

Inference takes the features as one [N, F] tensor (columns in the order of the model
metadata's `parameters.feature_names`) or as one [N] tensor per feature name, FP32 or FP64,
and returns the `probability` output (FP32, [N]); `label` (INT64, [N]) on request. The binary
tensor data extension is spoken both ways (`oip_request` reads it; `_render` writes outputs
asked for with `binary_data` or `binary_data_output` as raw bytes after the JSON header).
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import orjson

from nepse_predictor.artifacts import MODEL_NAME
from nepse_predictor.model import LoadedModel
from nepse_predictor.oip_request import InferRequest, parse_infer
from nepse_predictor.paths import ROUTE_INFER
from nepse_predictor.state import Incoming, Reply, ServingState

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
PLATFORMS = {"trees": "xgboost_xgboost", "onnx": "onnxruntime_onnx", "xgboost": "xgboost_xgboost"}
EXTENSIONS = ("binary_tensor_data",)

_OCTET = (b"content-type", b"application/octet-stream")


def _render(model: LoadedModel, request: InferRequest, request_id: str, p: np.ndarray) -> Reply:
    """The response; outputs asked for as binary follow the JSON header as raw bytes."""
    n = len(p)
    outputs = []
    raw: list[bytes] = []
    for output in request.outputs:
        if output.name == "probability":
            entry: dict[str, Any] = {"name": "probability", "shape": [n], "datatype": "FP32"}
            values = p.astype("<f4", copy=False)
        else:
            entry = {"name": "label", "shape": [n], "datatype": "INT64"}
            values = (p >= model.threshold).astype("<i8")
        if output.binary:
            data = values.tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            entry["data"] = values
        outputs.append(entry)
    header = orjson.dumps(
        {
            "model_name": model.name,
            "model_version": model.version,
            "id": request.id if request.id is not None else request_id,
            "outputs": outputs,
        },
        option=_NUMPY,
    )
    if not raw:
        return Reply(200, header)
    headers = (_OCTET, (b"inference-header-content-length", str(len(header)).encode()))
    return Reply(200, b"".join((header, *raw)), headers)


async def infer(state: ServingState, incoming: Incoming, fields: dict[str, Any]) -> Reply:
    model = state.require_model()
    started = time.perf_counter()
    request = await state.parse_body(
        parse_infer,
        incoming.body,
        state.settings.max_batch_rows,
        incoming.header_length,
        incoming.model_name or MODEL_NAME,
        incoming.model_version,
    )
    rows = request.rows
    probabilities = await state.predict(model, rows, len(rows), fields)
    state.record(ROUTE_INFER, incoming.request_id, model, probabilities, started, fields, rows)
    return _render(model, request, incoming.request_id, probabilities)


def server_version() -> str:
    try:
        return version("nepse-predictor")
    except PackageNotFoundError:
        return "0+unknown"


def server_metadata(state: ServingState) -> Reply:
    body = {"name": MODEL_NAME, "version": server_version(), "extensions": list(EXTENSIONS)}
    return Reply(200, orjson.dumps(body))


def server_live(state: ServingState) -> Reply:
    return Reply(200, orjson.dumps({"live": True}))


def server_ready(state: ServingState) -> Reply:
    ready = state.model is not None
    return Reply(200 if ready else 503, orjson.dumps({"ready": ready}))


def unknown_model(
    state: ServingState, model_name: str, model_version: str | None = None
) -> Reply | None:
    """404 for another model name, or a version this server does not hold."""
    if model_name != MODEL_NAME:
        message = f"model {model_name!r} is not served here; this server serves {MODEL_NAME!r}"
        return Reply(404, orjson.dumps({"error": message}))
    loaded = state.model.version if state.model is not None else None
    if model_version is not None and model_version != loaded:
        message = f"version {model_version!r} of {MODEL_NAME!r} is not loaded here" + (
            f"; this server has {loaded!r}" if loaded else "; no model is loaded"
        )
        return Reply(404, orjson.dumps({"error": message}))
    return None


def model_ready(
    state: ServingState, model_name: str = MODEL_NAME, model_version: str | None = None
) -> Reply:
    missing = unknown_model(state, model_name, model_version)
    if missing is not None:
        return missing
    ready = state.model is not None
    return Reply(200 if ready else 503, orjson.dumps({"name": MODEL_NAME, "ready": ready}))


def model_metadata(
    state: ServingState, model_name: str = MODEL_NAME, model_version: str | None = None
) -> Reply:
    missing = unknown_model(state, model_name, model_version)
    if missing is not None:
        return missing
    model = state.model
    if model is None:
        return Reply(503, orjson.dumps({"error": f"model not ready: {state.model_error}"}))
    metadata = {
        "name": MODEL_NAME,
        "versions": [model.version],
        "platform": PLATFORMS[model.backend],
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, model.n_features]}],
        "outputs": [
            {"name": "probability", "datatype": "FP32", "shape": [-1]},
            {"name": "label", "datatype": "INT64", "shape": [-1]},
        ],
        "parameters": {
            "feature_names": list(model.features),
            "threshold": model.threshold,
            "track": state.track,
            "backend": model.backend,
        },
    }
    return Reply(200, orjson.dumps(metadata))
