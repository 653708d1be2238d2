"""The FastAPI application: the OpenAPI document and its docs page, and every path that the
hot path (`middleware`) does not answer itself, in the shape of this service's errors.

`app.create_app` builds it off the start-up path (FastAPI and pydantic cost more to import
than the rest of the server together); its routes call the same `handlers` as the hot path.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException

from nepse_predictor.handlers.oip import server_version
from nepse_predictor.routes import health, metrics, oip, predict
from nepse_predictor.state import ServingState

DESCRIPTION = """Next-day direction of NEPSE-listed stocks (probability that the next
session closes higher), from named features (`/v1/predict`), from recent OHLCV bars
(`/v1/predict/bars`) or through the Open Inference Protocol v2 (`/v2/...`). Every response
names who answered in `X-Model-Version`, `X-Track` and `X-Request-Id`."""


ROUTERS = (health.router, predict.router, oip.router, metrics.router)


class ServiceApi(FastAPI):
    """FastAPI with the OpenAPI document completed by the request and response shapes."""

    def openapi(self) -> dict[str, Any]:
        return _openapi(self)


def build_api(state: ServingState) -> FastAPI:
    api = ServiceApi(
        title="nepse-predictor",
        version=server_version(),
        description=DESCRIPTION,
        redoc_url=None,
    )
    api.state.serving = state
    for router in ROUTERS:
        api.include_router(router)
    api.add_exception_handler(HTTPException, _error_reply)
    return api


def route_templates(api: FastAPI) -> list[str]:
    """The paths `api` answers: its own (OpenAPI, docs) and its routers'."""
    routes = [*api.router.routes, *(route for router in ROUTERS for route in router.routes)]
    return [route.path for route in routes if hasattr(route, "path")]


def _openapi(api: FastAPI) -> dict[str, Any]:
    if api.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from nepse_predictor.openapi_components import component_schemas

        schema = get_openapi(
            title=api.title,
            version=api.version,
            description=api.description,
            routes=api.routes,
        )
        settings = api.state.serving.settings
        components = component_schemas(settings.max_batch_rows, settings.max_bars)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
        api.openapi_schema = schema
    return api.openapi_schema


async def _error_reply(request: Request, exc: Exception) -> Response:
    """FastAPI's own errors (unknown path, wrong method) in the shape every other error has,
    `{"error": ...}`, which Open Inference Protocol clients decode."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    message = f"{request.method} {path[:200]}: {exc.detail}"
    if exc.status_code == 404:
        message = f"no route for {request.method} {path[:200]}"
    return Response(
        orjson.dumps({"error": message}),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )
