"""FastAPI routes of the Open Inference Protocol v2 (`handlers.oip` answers them).

Each handler is registered on the unversioned and the versioned path of its route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from nepse_predictor.handlers import oip
from nepse_predictor.paths import (
    ROUTE_INFER,
    ROUTE_MODEL_METADATA,
    ROUTE_MODEL_READY,
    ROUTE_SERVER_LIVE,
    ROUTE_SERVER_METADATA,
    ROUTE_SERVER_READY,
    ROUTE_VERSION_INFER,
    ROUTE_VERSION_METADATA,
    ROUTE_VERSION_READY,
)
from nepse_predictor.routes import answer, body_of, replies, response_of, serving_state

router = APIRouter(tags=["open inference protocol v2"])

_UNVERSIONED = ("model_name",)
_VERSIONED = ("model_name", "model_version")


def _path_parameters(*names: str) -> dict[str, Any]:
    # Declared by hand: typed path parameters would make FastAPI build pydantic validators,
    # which costs more than the two strings are worth.
    return {
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ]
    }


def _names(request: Request) -> tuple[str, str | None]:
    params = request.path_params
    return params["model_name"], params.get("model_version")


Endpoint = Callable[..., Any]


def _model_route(
    method: str, path: str, summary: str, ok: str, *errors: int, **extra: Any
) -> Callable[[Endpoint], Endpoint]:
    """A route on a model path; the versioned and unversioned paths share one handler."""
    names = _VERSIONED if "{model_version}" in path else _UNVERSIONED
    openapi = {**extra.pop("openapi_extra", {}), **_path_parameters(*names)}
    return router.api_route(
        path,
        methods=[method],
        summary=summary,
        openapi_extra=openapi,
        responses=replies(ok, *errors),
        **extra,
    )


@router.get(
    ROUTE_SERVER_METADATA, summary="Server metadata", responses=replies("ServerMetadataResponse")
)
async def server_metadata(request: Request) -> Response:
    return response_of(oip.server_metadata(serving_state(request)))


@router.get(ROUTE_SERVER_LIVE, summary="Server live", responses=replies("LiveResponse"))
async def server_live(request: Request) -> Response:
    return response_of(oip.server_live(serving_state(request)))


@router.get(
    ROUTE_SERVER_READY,
    summary="Server ready (503 until a verified model is loaded)",
    responses=replies("ReadyResponse", 503),
)
async def server_ready(request: Request) -> Response:
    return response_of(oip.server_ready(serving_state(request)))


_MODEL_ERRORS = (404, 503)


@_model_route("GET", ROUTE_MODEL_READY, "Model ready", "ModelReadyResponse", *_MODEL_ERRORS)
@_model_route(
    "GET", ROUTE_VERSION_READY, "Model version ready", "ModelReadyResponse", *_MODEL_ERRORS
)
async def model_ready(request: Request) -> Response:
    return response_of(oip.model_ready(serving_state(request), *_names(request)))


@_model_route(
    "GET", ROUTE_MODEL_METADATA, "Model metadata", "ModelMetadataResponse", *_MODEL_ERRORS
)
@_model_route(
    "GET",
    ROUTE_VERSION_METADATA,
    "Model metadata of a version",
    "ModelMetadataResponse",
    *_MODEL_ERRORS,
)
async def model_metadata(request: Request) -> Response:
    return response_of(oip.model_metadata(serving_state(request), *_names(request)))


_INFER_ERRORS = (404, 413, 422, 503)
_INFER = {"openapi_extra": body_of("InferenceRequest"), "response_class": Response}


@_model_route("POST", ROUTE_INFER, "Inference", "InferenceResponse", *_INFER_ERRORS, **_INFER)
@_model_route(
    "POST",
    ROUTE_VERSION_INFER,
    "Inference on a version",
    "InferenceResponse",
    *_INFER_ERRORS,
    **_INFER,
)
async def model_infer(request: Request) -> Response:
    model_name, model_version = _names(request)
    missing = oip.unknown_model(serving_state(request), model_name, model_version)
    if missing is not None:
        return response_of(missing)
    return await answer(request, oip.infer, model_name, model_version)
