"""Open Inference Protocol v2 (KServe / MLServer / Triton REST), model `nepse-predictor`.

Inference takes the features as one [N, F] tensor (columns in the order of the model
metadata's `parameters.feature_names`) or as one [N] tensor per feature name, FP32 or FP64,
and returns the `probability` output (FP32, [N]); `label` (INT64, [N]) on request. The binary
tensor data extension is spoken both ways (`oip_request` reads it; `_render` writes outputs
asked for with `binary_data` or `binary_data_output` as raw bytes after the JSON header).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.types import DecoratedCallable

from nepse_predictor.artifacts import MODEL_NAME
from nepse_predictor.model import LoadedModel
from nepse_predictor.oip_request import InferRequest, parse_infer
from nepse_predictor.routes import answer, body_of, json_response, replies, serving_state
from nepse_predictor.routes.paths import ROUTE_INFER
from nepse_predictor.state import Incoming, Reply, ServingState

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
PLATFORMS = {"trees": "xgboost_xgboost", "onnx": "onnxruntime_onnx", "xgboost": "xgboost_xgboost"}

EXTENSIONS = ("binary_tensor_data",)

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])


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


def _server_version() -> str:
    try:
        return version("nepse-predictor")
    except PackageNotFoundError:
        return "0+unknown"


def _unknown(request: Request) -> Response | None:
    """404 for another model name, or a version this server does not hold."""
    model_name, model_version = _names(request)
    state = serving_state(request)
    if model_name != MODEL_NAME:
        message = f"model {model_name!r} is not served here; this server serves {MODEL_NAME!r}"
        return json_response(orjson.dumps({"error": message}), 404)
    loaded = state.model.version if state.model is not None else None
    if model_version is not None and model_version != loaded:
        message = f"version {model_version!r} of {MODEL_NAME!r} is not loaded here" + (
            f"; this server has {loaded!r}" if loaded else "; no model is loaded"
        )
        return json_response(orjson.dumps({"error": message}), 404)
    return None


def _path_parameters(*names: str) -> dict[str, Any]:
    # Declared by hand: typed path parameters would make FastAPI build pydantic validators at
    # import, which costs a twentieth of the process's start-up for two strings.
    return {
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ]
    }


def _names(request: Request) -> tuple[str, str | None]:
    params = request.path_params
    return params["model_name"], params.get("model_version")


@router.get("", summary="Server metadata", responses=replies("ServerMetadataResponse"))
async def server_metadata() -> Response:
    return json_response(
        orjson.dumps(
            {
                "name": MODEL_NAME,
                "version": _server_version(),
                "extensions": list(EXTENSIONS),
            }
        )
    )


@router.get("/health/live", summary="Server live", responses=replies("LiveResponse"))
async def server_live() -> Response:
    return json_response(orjson.dumps({"live": True}))


@router.get(
    "/health/ready",
    summary="Server ready (503 until a verified model is loaded)",
    responses=replies("ReadyResponse", 503),
)
async def server_ready(request: Request) -> Response:
    ready = serving_state(request).model is not None
    return json_response(orjson.dumps({"ready": ready}), 200 if ready else 503)


_UNVERSIONED = ("model_name",)
_VERSIONED = ("model_name", "model_version")
_VERSION = "{model_name}/versions/{model_version}"
_INFER_PATH = ROUTE_INFER.removeprefix("/v2")
# A model's path -> the OpenAPI summaries of it and of the same path of a version.
_SUMMARIES = {
    "/models/{model_name}/ready": ("Model ready", "Model version ready"),
    "/models/{model_name}": ("Model metadata", "Model metadata of a version"),
    _INFER_PATH: ("Inference", "Inference on a version"),
}


def _model_routes(
    method: str, path: str, ok: str, *errors: int, **extra: Any
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """One handler on a model path and on the same path of a version of the model
    (`{model_name}` followed by `/versions/{model_version}`)."""
    openapi_extra = extra.pop("openapi_extra", {})
    versioned = path.replace("{model_name}", _VERSION, 1)
    summary, versioned_summary = _SUMMARIES[path]
    routes = ((versioned, versioned_summary, _VERSIONED), (path, summary, _UNVERSIONED))

    def register(handler: DecoratedCallable) -> DecoratedCallable:
        for route_path, summary, names in routes:
            router.api_route(
                route_path,
                methods=[method],
                summary=summary,
                openapi_extra={**openapi_extra, **_path_parameters(*names)},
                responses=replies(ok, *errors),
                **extra,
            )(handler)
        return handler

    return register


@_model_routes("GET", "/models/{model_name}/ready", "ModelReadyResponse", 404, 503)
async def model_ready(request: Request) -> Response:
    missing = _unknown(request)
    if missing is not None:
        return missing
    ready = serving_state(request).model is not None
    return json_response(orjson.dumps({"name": MODEL_NAME, "ready": ready}), 200 if ready else 503)


@_model_routes("GET", "/models/{model_name}", "ModelMetadataResponse", 404, 503)
async def model_metadata(request: Request) -> Response:
    missing = _unknown(request)
    if missing is not None:
        return missing
    state = serving_state(request)
    model = state.model
    if model is None:
        return json_response(orjson.dumps({"error": f"model not ready: {state.model_error}"}), 503)
    width = model.n_features
    return json_response(
        orjson.dumps(
            {
                "name": MODEL_NAME,
                "versions": [model.version],
                "platform": PLATFORMS[model.backend],
                "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, width]}],
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
        )
    )


_INFER = {"openapi_extra": body_of("InferenceRequest"), "response_class": Response}


@_model_routes("POST", _INFER_PATH, "InferenceResponse", 404, 413, 422, 503, **_INFER)
async def model_infer(request: Request) -> Response:
    missing = _unknown(request)
    if missing is not None:
        return missing
    return await answer(request, infer, *_names(request))
