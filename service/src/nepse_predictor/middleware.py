"""The outermost ASGI layer: who answered, how long it took, and the prediction hot path.

For every HTTP request it
- takes `X-Request-Id` from the request (if it is a sane token) or makes one, and adds
  `X-Request-Id`, `X-Model-Version` and `X-Track` to every response, errors included;
- reads request bodies itself (`request_body`): more than NEPSE_MAX_BODY_BYTES, also after
  decompressing, gets 413, a body slower than NEPSE_BODY_TIMEOUT_SECONDS 408, a content coding
  other than gzip or deflate 415;
- answers the prediction endpoints, the probes and /metrics (exact paths) by calling their
  `handlers` directly, which skips routing and dependency resolution on the hot path and
  keeps FastAPI off the start-up path; everything else goes to FastAPI (`app.DeferredApi`);
- counts the request in Prometheus, labelled by route template (`RouteLabels`), and writes one
  JSON access-log line.

It is plain ASGI (no BaseHTTPMiddleware): no extra task or stream per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from nepse_predictor.connection_writer import ConnectionWriter

from nepse_predictor.artifacts import MODEL_NAME
from nepse_predictor.handlers import oip, probes
from nepse_predictor.handlers.predict import predict_bars, predict_rows
from nepse_predictor.paths import (
    BARS_PATH,
    BODY_RECEIVED_KEY,
    FIELDS_KEY,
    HEADER_LENGTH_KEY,
    HEALTH_PATH,
    INFER_PATH,
    METRICS_PATH,
    PREDICT_PATH,
    READY_PATH,
    REQUEST_ID_KEY,
    ROUTE_INFER,
    ROUTE_MODEL_READY,
    ROUTE_SERVER_LIVE,
    ROUTE_SERVER_READY,
    UNMATCHED,
    WRITER_KEY,
)
from nepse_predictor.request_body import (
    BadEncoding,
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    coding_of,
    decode_body,
    read_body,
)
from nepse_predictor.state import (
    OFFLOAD_BYTES,
    Handler,
    Incoming,
    Reply,
    ServingState,
    internal_error,
    run_handler,
)

log = logging.getLogger("nepse_predictor.server")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_BODY_HEADERS = frozenset((b"content-length", b"transfer-encoding"))
_JSON = (b"content-type", b"application/json")

# path -> (route label, handler), POST only.
FAST_ROUTES: dict[str, tuple[str, Handler]] = {
    INFER_PATH: (ROUTE_INFER, oip.infer),
    PREDICT_PATH: (PREDICT_PATH, predict_rows),
    BARS_PATH: (BARS_PATH, predict_bars),
}
# path -> (route label, answer), GET without a body only.
PROBES: dict[str, tuple[str, Callable[[ServingState], Reply]]] = {
    HEALTH_PATH: (HEALTH_PATH, probes.health),
    READY_PATH: (READY_PATH, probes.ready),
    METRICS_PATH: (METRICS_PATH, probes.metrics),
    ROUTE_SERVER_LIVE: (ROUTE_SERVER_LIVE, oip.server_live),
    ROUTE_SERVER_READY: (ROUTE_SERVER_READY, oip.server_ready),
    ROUTE_MODEL_READY.format(model_name=MODEL_NAME): (ROUTE_MODEL_READY, oip.model_ready),
}
_PARAMETER = re.compile(r"\{[^{}/]+\}")


class RequestIds:
    """Unpredictable request ids (16 random bytes in hex) from the kernel's generator, taken
    256 at a time: one system call per 256 requests, not per request."""

    BATCH = 256

    def __init__(self) -> None:
        self._random = b""
        self._offset = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._random, self._offset = b"", 0  # a child must not repeat its parent's ids

    def next(self) -> bytes:
        offset = self._offset
        if offset == len(self._random):
            self._random, offset = os.urandom(16 * self.BATCH), 0
        self._offset = offset + 16
        return self._random[offset : offset + 16].hex().encode()


_request_ids = RequestIds()


def _error(message: str, field: str = "body") -> bytes:
    return orjson.dumps({"error": message, "field": field})


class RouteLabels:
    """The route template a path matches among the app's routes, else `UNMATCHED`: a metric
    label from a closed set whatever path a client sends."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._patterns = [(_compile(template), template) for template in templates]

    def of(self, path: str) -> str:
        fast = FAST_ROUTES.get(path) or PROBES.get(path)
        if fast is not None:
            return fast[0]
        for pattern, template in self._patterns:
            if pattern.fullmatch(path):
                return template
        return UNMATCHED


def _compile(template: str) -> re.Pattern[str]:
    """A route template's paths: each `{parameter}` one path segment."""
    return re.compile("[^/]+".join(re.escape(part) for part in _PARAMETER.split(template)))


class ServingMiddleware:
    def __init__(self, app: ASGIApp, state: ServingState, routes: RouteLabels) -> None:
        self.app = app
        self.state = state
        self.routes = routes

    def answers_inline(self, scope: Scope) -> bool:
        """Whether this layer answers the request without waiting for anything but its body
        (`http_protocol` then answers it inline): a prediction, or a probe without a body,
        unless the prediction cache is on (its lookups wait for Redis)."""
        sink = self.state.sink
        if sink is not None and sink.cache_enabled:
            return False
        method = scope["method"]
        if method == "POST":
            return scope["path"] in FAST_ROUTES
        return (
            method == "GET"
            and scope["path"] in PROBES
            and not any(name in _BODY_HEADERS for name, _ in scope["headers"])
        )

    async def _body(
        self, receive: Receive, declared: int | None, encoding: bytes | None, received: bool
    ) -> tuple[bytes, int, str, str]:
        """The decoded body, or "" and the status, message and field of the refusal."""
        settings = self.state.settings
        limit = settings.max_body_bytes
        try:
            coding = coding_of(encoding) if encoding is not None else ""
            body = await read_body(
                receive, declared, limit, settings.body_timeout_seconds, received
            )
            if coding:
                if len(body) > OFFLOAD_BYTES:
                    body = await asyncio.to_thread(decode_body, body, coding, limit)
                else:
                    body = decode_body(body, coding, limit)
        except BodyTooLarge:
            return (
                b"",
                413,
                (
                    f"body: larger than the limit of {limit} bytes (NEPSE_MAX_BODY_BYTES); "
                    "split the batch"
                ),
                "body",
            )
        except BodyTimeout:
            return (
                b"",
                408,
                (
                    f"body: not received within {settings.body_timeout_seconds:g} s "
                    "(NEPSE_BODY_TIMEOUT_SECONDS)"
                ),
                "body",
            )
        except BadEncoding as exc:
            return b"", exc.status, str(exc), exc.field
        return body, 200, "", ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = self.state
        request_id: bytes | None = None
        declared: int | None = None
        encoding: bytes | None = None
        header_length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value if _SANE_ID.fullmatch(value) else None
            elif name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
            elif name == b"content-encoding":
                encoding = value
            elif name == b"inference-header-content-length":
                header_length = value
            elif name == b"transfer-encoding":
                chunked = True
        if request_id is None:
            request_id = _request_ids.next()
        headers = [
            (b"x-request-id", request_id),
            (b"x-model-version", state.version_header),
            (b"x-track", state.track_header),
        ]
        method = scope["method"]
        path = scope["path"]
        rid = request_id.decode()
        fields: dict[str, Any] = {}
        writer = scope.get(WRITER_KEY)

        has_body = method in _BODY_METHODS or chunked or (declared is not None and declared > 0)
        if method == "GET" and not has_body and path in PROBES:
            route, probe = PROBES[path]
            try:
                reply = probe(state)
            except Exception:
                reply = internal_error(rid, fields)
            await self._reply(send, writer, reply.status, reply.body, headers, extra=reply.headers)
            self._observe(route, method, path, reply.status, started, rid, fields)
            return
        body = b""
        if has_body:
            try:
                body, status, problem, field = await self._body(
                    receive, declared, encoding, scope.get(BODY_RECEIVED_KEY, False)
                )
            except ClientGone:
                self._observe(self.routes.of(path), method, path, 499, started, rid, fields)
                return
            if problem:
                fields["error"] = problem
                await self._reply(send, writer, status, _error(problem, field), headers, close=True)
                self._observe(self.routes.of(path), method, path, status, started, rid, fields)
                return
            fast = FAST_ROUTES.get(path) if method == "POST" else None
            if fast is not None:
                incoming = Incoming(body, rid)
                if header_length is not None:
                    incoming.header_length = _header_length(header_length)
                reply = await run_handler(fast[1], state, incoming, fields)
                await self._reply(
                    send, writer, reply.status, reply.body, headers, extra=reply.headers
                )
                self._observe(fast[0], method, path, reply.status, started, rid, fields)
                return

        # Everything else: FastAPI, with the body replayed and the headers added.
        scope[REQUEST_ID_KEY] = rid
        scope[FIELDS_KEY] = fields
        if header_length is not None:
            scope[HEADER_LENGTH_KEY] = _header_length(header_length)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        response_status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal response_status
            if message["type"] == "http.response.start":
                response_status = message["status"]
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        try:
            await self.app(scope, replay if has_body else receive, send_with_headers)
        finally:
            matched = scope.get("route")
            route = getattr(matched, "path", None) or self.routes.of(path)
            self._observe(route, method, path, response_status, started, rid, fields)

    @staticmethod
    async def _reply(
        send: Send,
        writer: ConnectionWriter | None,
        status: int,
        payload: bytes,
        headers: list[tuple[bytes, bytes]],
        close: bool = False,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        response_headers = [
            *(extra or (_JSON,)),
            (b"content-length", str(len(payload)).encode()),
            *headers,
        ]
        if close:
            response_headers.append((b"connection", b"close"))
        # Under http_protocol's server the head and body leave in one send (an in-process
        # test client has no writer).
        start = {"type": "http.response.start", "status": status, "headers": response_headers}
        if writer is not None:
            writer.hold_for(2)
        try:
            await send(start)
            await send({"type": "http.response.body", "body": payload})
        finally:
            if writer is not None:
                writer.release()

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


def _header_length(value: bytes) -> int:
    """Inference-Header-Content-Length as a number; -1 when it is not one (the handler says
    so in its error)."""
    try:
        return int(value)
    except ValueError:
        return -1
