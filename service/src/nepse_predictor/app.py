"""The FastAPI application: `create_app(settings)`.

The model is loaded in the lifespan, never at import. A missing or tampered model leaves the
server up (liveness 200) but not ready (503), and the log says which file is wrong and how.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException

from nepse_predictor.config import Settings
from nepse_predictor.middleware import RouteLabels, ServingMiddleware
from nepse_predictor.routes import health, metrics, oip, predict
from nepse_predictor.routes.paths import PREDICTION_ROUTES
from nepse_predictor.state import ServingState

DESCRIPTION = """Next-day direction of NEPSE-listed stocks (probability that the next
session closes higher), from named features (`/v1/predict`), from recent OHLCV bars
(`/v1/predict/bars`) or through the Open Inference Protocol v2 (`/v2/...`). Every response
names who answered in `X-Model-Version`, `X-Track` and `X-Request-Id`."""


class PredictorApp(FastAPI):
    """FastAPI with `ServingMiddleware` in front of everything FastAPI does per request.

    The prediction hot path is answered before FastAPI's own per-request work (telemetry
    checks, middleware stack, routing); every other request passes through to FastAPI, and
    because the middleware sits outside Starlette's error middleware even a 500 gets the
    identifying headers, a metric and a log line.
    """

    serving: ServingMiddleware

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.serving(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        return _openapi(self)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from nepse_predictor.openapi_components import component_schemas

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        settings = app.state.serving.settings
        components = component_schemas(settings.max_batch_rows, settings.max_bars)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
        app.openapi_schema = schema
    return app.openapi_schema


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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings.from_environment()
    state = ServingState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.start()
        if not gc.isenabled():  # `serve` turns it off for start-up
            gc.freeze()
            gc.enable()
        try:
            yield
        finally:
            await state.stop()
            state.access_log.flush(wait=True)

    app = PredictorApp(
        title="nepse-predictor",
        version=oip._server_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.serving = state
    for module in (health, predict, oip, metrics):
        app.include_router(module.router)
    app.add_exception_handler(HTTPException, _error_reply)
    templates = [route.path for route in app.router.routes if hasattr(route, "path")]
    for module in (health, predict, oip, metrics):
        templates += [route.path for route in module.router.routes if hasattr(route, "path")]
    app.serving = ServingMiddleware(partial(FastAPI.__call__, app), state, RouteLabels(templates))
    state.metrics.start_at_zero(PREDICTION_ROUTES)
    return app
