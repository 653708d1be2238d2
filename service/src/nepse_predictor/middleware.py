"""The outermost ASGI layer: who answered, how long it took, and the prediction hot path.

For every HTTP request it
- takes `X-Request-Id` from the request (if it is a sane token) or makes one, and adds
  `X-Request-Id`, `X-Model-Version` and `X-Track` to every response, errors included;
- reads request bodies itself, refusing more than NEPSE_MAX_BODY_BYTES with 413;
- answers the prediction endpoints (exact paths) by calling their handlers directly, which
  skips routing and dependency resolution on the hot path; everything else goes to FastAPI;
- counts the request in Prometheus and writes one JSON access-log line.

It is plain ASGI (no BaseHTTPMiddleware): no extra task or stream per request.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import orjson

from nepse_predictor.routes import FIELDS_KEY, REQUEST_ID_KEY
from nepse_predictor.routes.oip import INFER_PATH, ROUTE_INFER, infer
from nepse_predictor.routes.predict import BARS_PATH, PREDICT_PATH, predict_bars, predict_rows
from nepse_predictor.state import Handler, ServingState, run_handler

log = logging.getLogger("nepse_predictor.server")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))

# path -> (route label, handler), POST only.
FAST_ROUTES: dict[str, tuple[str, Handler]] = {
    INFER_PATH: (ROUTE_INFER, infer),
    PREDICT_PATH: (PREDICT_PATH, predict_rows),
    BARS_PATH: (BARS_PATH, predict_bars),
}


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


def _error(message: str, field: str = "body") -> bytes:
    return orjson.dumps({"error": message, "field": field})


class ServingMiddleware:
    def __init__(self, app: Any, state: ServingState) -> None:
        self.app = app
        self.state = state

    async def _read_body(self, receive: Any, declared: int | None) -> bytes:
        limit = self.state.settings.max_body_bytes
        if declared is not None and declared > limit:
            raise BodyTooLarge
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise BodyTooLarge
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = self.state
        request_id: bytes | None = None
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value if _SANE_ID.fullmatch(value) else None
            elif name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if request_id is None:
            request_id = os.urandom(16).hex().encode()
        headers = [
            (b"x-request-id", request_id),
            (b"x-model-version", state.version_header),
            (b"x-track", state.track_header),
        ]
        method = scope["method"]
        path = scope["path"]
        rid = request_id.decode()
        fields: dict[str, Any] = {}
        status = 500
        route = path

        body = b""
        if method in _BODY_METHODS:
            try:
                body = await self._read_body(receive, declared)
            except BodyTooLarge:
                limit = state.settings.max_body_bytes
                status = 413
                payload = _error(
                    f"body: larger than the limit of {limit} bytes (NEPSE_MAX_BODY_BYTES); "
                    "split the batch"
                )
                fast = FAST_ROUTES.get(path)
                route = fast[0] if fast else "unmatched"
                await self._reply(send, status, payload, headers, close=True)
                self._observe(route, method, path, status, started, rid, fields)
                return
            except ClientGone:
                self._observe(
                    FAST_ROUTES.get(path, (path,))[0], method, path, 499, started, rid, fields
                )
                return
            fast = FAST_ROUTES.get(path) if method == "POST" else None
            if fast is not None:
                route = fast[0]
                status, payload = await run_handler(fast[1], state, body, rid, fields)
                await self._reply(send, status, payload, headers)
                self._observe(route, method, path, status, started, rid, fields)
                return

        # Everything else: FastAPI, with the body replayed and the headers added.
        scope[REQUEST_ID_KEY] = rid
        scope[FIELDS_KEY] = fields
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if method in _BODY_METHODS and not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        response_status = 500

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = message["status"]
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        try:
            await self.app(scope, replay if method in _BODY_METHODS else receive, send_with_headers)
        finally:
            matched = scope.get("route")
            route = getattr(matched, "path", None) or "unmatched"
            self._observe(route, method, path, response_status, started, rid, fields)

    @staticmethod
    async def _reply(
        send: Any,
        status: int,
        payload: bytes,
        headers: list[tuple[bytes, bytes]],
        close: bool = False,
    ) -> None:
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            *headers,
        ]
        if close:
            response_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    def _observe(
        self,
        route: str,
        method: str,
        path: str,
        status: int,
        started: float,
        rid: str,
        fields: dict[str, Any],
    ) -> None:
        seconds = time.perf_counter() - started
        state = self.state
        state.metrics.observe_request(route, method, status, seconds)
        if state.access_log.enabled:
            entry = {
                "level": "info" if status < 500 else "error",
                "msg": "request",
                "method": method,
                "path": path if len(path) <= 200 else path[:200] + "...",
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "request_id": rid,
                "track": state.track,
                "model_version": state.model.version if state.model is not None else None,
            }
            if fields:
                entry.update(fields)
            state.access_log.write(entry)
