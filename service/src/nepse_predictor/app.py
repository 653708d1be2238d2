"""The ASGI application: `create_app(settings)`.

The model is loaded in the lifespan, never at import. A missing or tampered model leaves the
server up (liveness 200) but not ready (503), and the log says which file is wrong and how.

Start-up imports only what predictions and probes need. `middleware.ServingMiddleware`
answers predictions, /health, /ready, the Open Inference Protocol's health and model-ready
paths and /metrics itself; the FastAPI application (`api`: the OpenAPI document, docs, model
metadata, errors for unknown paths) is built in a thread once the server has taken its first
request, and a request that needs it before then waits for it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

from nepse_predictor.config import Settings
from nepse_predictor.middleware import RouteLabels, ServingMiddleware
from nepse_predictor.paths import PREDICTION_ROUTES, ROUTE_TEMPLATES
from nepse_predictor.state import ServingState

log = logging.getLogger("nepse_predictor.server")


class DeferredApi:
    """The FastAPI application, built once, off the start-up path (`build_soon`), or by the
    first request that needs it."""

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self._api: Any = None
        self._lock = threading.Lock()
        self._started = False

    def build(self) -> Any:
        with self._lock:
            if self._api is None:
                from nepse_predictor.api import build_api

                self._api = build_api(self.state)
                # Like start-up's objects, the application's live as long as the process:
                # out of the collector's way, they cost no full collection any time.
                gc.freeze()
        return self._api

    def build_soon(self) -> None:
        if not self._started:
            self._started = True
            threading.Thread(target=self.build, name="build-api", daemon=True).start()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        api = self._api
        if api is None:
            api = await asyncio.to_thread(self.build)
        await api(scope, receive, send)


class ServingApp:
    """The outermost ASGI callable: the lifespan, then every request through the middleware."""

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self.api = DeferredApi(state)
        self.serving = ServingMiddleware(self.api, state, RouteLabels(ROUTE_TEMPLATES))
        state.metrics.start_at_zero(PREDICTION_ROUTES)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        self.api.build_soon()
        await self.serving(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        state = self.state
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await state.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if not gc.isenabled():  # `serve` turns it off for start-up
                    gc.freeze()
                    gc.enable()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await state.stop()
                finally:
                    state.access_log.flush(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None) -> ServingApp:
    if settings is None:
        settings = Settings.from_environment()
    return ServingApp(ServingState(settings))
