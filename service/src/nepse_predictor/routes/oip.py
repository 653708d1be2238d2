"""FastAPI routes of the Open Inference Protocol v2 (`handlers.oip` answers them).

Each handler is registered on the unversioned and the versioned path of its route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.types import DecoratedCallable

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


def _model_routes(
    method: str,
    routes: tuple[str, str],
    summaries: tuple[str, str],
    ok: str,
    *errors: int,
    **extra: Any,
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """One handler on a model's path and on the same path of a version of it (`routes`, each
    with its OpenAPI summary in `summaries`)."""
    openapi_extra = extra.pop("openapi_extra", {})

    def register(handler: DecoratedCallable) -> DecoratedCallable:
        for path, summary, names in zip(routes, summaries, (_UNVERSIONED, _VERSIONED), strict=True):
            router.api_route(
                path,
                methods=[method],
                summary=summary,
                openapi_extra={**openapi_extra, **_path_parameters(*names)},
                responses=replies(ok, *errors),
                **extra,
            )(handler)
        return handler

    return register


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


@_model_routes(
    "GET",
    (ROUTE_MODEL_READY, ROUTE_VERSION_READY),
    ("Model ready", "Model version ready"),
    "ModelReadyResponse",
    404,
    503,
)
async def model_ready(request: Request) -> Response:
    return response_of(oip.model_ready(serving_state(request), *_names(request)))


@_model_routes(
    "GET",
    (ROUTE_MODEL_METADATA, ROUTE_VERSION_METADATA),
    ("Model metadata", "Model metadata of a version"),
    "ModelMetadataResponse",
    404,
    503,
)
async def model_metadata(request: Request) -> Response:
    return response_of(oip.model_metadata(serving_state(request), *_names(request)))


@_model_routes(
    "POST",
    (ROUTE_INFER, ROUTE_VERSION_INFER),
    ("Inference", "Inference on a version"),
    "InferenceResponse",
    404,
    413,
    422,
    503,
    openapi_extra=body_of("InferenceRequest"),
    response_class=Response,
)
async def model_infer(request: Request) -> Response:
    missing = oip.unknown_model(serving_state(request), *_names(request))
    if missing is not None:
        return response_of(missing)
    return await answer(request, oip.infer, *_names(request))
