"""uvicorn's httptools protocol with the limits a public listener needs.

uvicorn bounds neither the size of a request head nor the time a client may take to send it,
and it starts its keep-alive timer only after a first response: a connection that never
finishes its headers is held, and its bytes buffered, forever. This protocol adds, per
connection:

- a cap on the request head's size (request line and headers) and on the number of header
  fields: past either the client gets 431 and the connection is closed. A head still coming is
  measured in the bytes read for it, so the parser never buffers more than one read beyond the
  cap; a head that came whole in fewer reads is measured in what the parser made of it (the
  target and every field), so its size is checked however it was split;
- a header timeout: from the connection's start, or from the first byte of a request on a
  kept-alive connection, the whole head must arrive within it, else the connection is closed;
- a bound on open connections: past it a new connection is closed as soon as it is accepted;
- a bound on requests sent ahead of their answers (HTTP pipelining): uvicorn queues each one,
  a few KiB apiece, however many a client sends without reading; past the bound the
  connection is closed;
- a maximum age: a kept-alive connection older than it gets its next answer with
  `connection: close`, so a client behind a Service reconnects (to the new pods of a rollout,
  the new colour of a flip) instead of staying on one pod for ever;
- answers sent together (`connection_writer`): each response's head and body in one write,
  and under load the answers of one event-loop turn together at its end;
- answers inline: a request whose answer waits for nothing but its body (a prediction or a
  probe without Redis, `ServingMiddleware.answers_inline`) is answered in the callback that
  read it, as soon as its body is in, instead of in a task of its own that the loop schedules
  for its next turn; one that does have to wait (a client that does not read its answers)
  goes on in a task from there;
- a graceful stop that never races a client: uvicorn closes a connection between requests at
  once, while its client may be sending the next one; here that next request is answered with
  `connection: close`, and only a connection that stays idle is closed, after a short while.

Body read timeouts and body size live in `middleware.ServingMiddleware`, which reads bodies;
the protocol marks a request whose whole body arrived before the application reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from nepse_predictor.connection_writer import AnswerTurn, ConnectionWriter
from nepse_predictor.paths import BODY_RECEIVED_KEY, WRITER_KEY

_STATUS_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
# A request line's bytes besides its target, counted towards the head's size.
_REQUEST_LINE_FRAME = len(b"GET  HTTP/1.1\r\n")


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_seconds: float
    max_connections: int
    max_pipelined: int = 32
    max_age_seconds: float = 0.0
    drain_idle_seconds: float = 2.0


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that is refused."""


def _refusal(status_line: bytes, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    return b"".join(
        (
            status_line,
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


class _Started:
    """A coroutine started outside a task and stopped at `awaited`: awaiting this goes on with
    it, passing on what the awaiting task sends or throws in, as `yield from` does."""

    __slots__ = ("_awaited", "_coroutine")

    def __init__(self, coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
        self._coroutine = coroutine
        self._awaited = awaited

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, awaited = self._coroutine, self._awaited
        try:
            while True:
                try:
                    sent = yield awaited
                except BaseException as exc:
                    awaited = coroutine.throw(exc)
                else:
                    awaited = coroutine.send(sent)
        except StopIteration:
            return


async def _go_on(started: _Started) -> None:
    await started


def limited_protocol(
    limits: ConnectionLimits,
    refused: Callable[[str], None],
    answers_inline: Callable[[Any], bool],
) -> type[HttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)`; `refused(reason)` counts refusals,
    with `reason` one of `metrics.REFUSED_REASONS`; `answers_inline(scope)` says whether the
    application answers a request without waiting for anything but its body."""
    turn = AnswerTurn()
    head_too_large = (
        "header_too_large",
        f"request head: larger than the limit of {limits.max_header_bytes} bytes "
        "(NEPSE_MAX_HEADER_BYTES)",
    )

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True
            self._head_bytes = 0
            self._header_count = 0
            self._parsed_head_bytes = 0
            self._head_timer: asyncio.TimerHandle | None = None
            # When the head being read began, while no timer runs for it.
            self._head_since: float | None = None
            self._refusal: tuple[str, str] | None = None
            self._opened_at = 0.0
            self._stopping = False
            self._writer: ConnectionWriter | None = None
            self._parsing = False
            # A request to answer inline once its body is in: (cycle, app).
            self._inline: tuple[Any, Any] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # A TCP server's transport is a stream transport, though uvloop's do not derive
            # from asyncio.Transport (so this cannot be an isinstance check).
            stream = cast(asyncio.Transport, transport)
            if len(self.connections) >= limits.max_connections:
                refused("too_many_connections")
                stream.abort()
                return
            super().connection_made(stream)
            # Every write to this connection from here on, the protocol's and each
            # request's, goes through one writer, so their order is kept.
            self._writer = ConnectionWriter(stream, self.loop, self.tasks, turn)
            self.transport = cast(asyncio.Transport, self._writer)
            self._opened_at = self.loop.time()
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            if self.transport is None:  # refused in connection_made
                return
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            if self._in_head:
                if self._head_timer is None and self._head_since is None:
                    self._head_since = self.loop.time()
                self._head_bytes += len(data)
            self._parsing = True
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self._inline = None  # the connection is refused or answered 400 and closed
                if self._refusal is not None:
                    self._refuse(*self._refusal)
                else:
                    self.logger.warning("Invalid HTTP request received.")
                    self.send_400_response("Invalid HTTP request received.")
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            finally:
                self._parsing = False
                if self._inline is not None:  # its body is still coming: a task waits for it
                    unread, self._inline = self._inline, None
                    super()._start_asgi_task(*unread)
            if self._in_head and self._head_bytes > limits.max_header_bytes:
                self._refuse(*head_too_large)
            # A head that came whole needed no timer; one still coming gets it, counted from its
            # first byte.
            since = self._head_since
            waiting = self._in_head and since is not None and self._head_timer is None
            if waiting and since is not None and not self.transport.is_closing():
                self._head_timer = self.loop.call_at(
                    since + limits.header_timeout_seconds, self._head_timed_out
                )

        def on_message_begin(self) -> None:
            super().on_message_begin()
            cast(dict[str, Any], self.scope)[WRITER_KEY] = self._writer
            self._in_head = True
            self._header_count = 0
            self._parsed_head_bytes = _REQUEST_LINE_FRAME

        def on_url(self, url: bytes) -> None:  # called once per piece of the target
            self._count_head_bytes(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if self._header_count > limits.max_headers:
                self._refusal = (
                    "too_many_headers",
                    f"request head: more than {limits.max_headers} header fields "
                    "(NEPSE_MAX_HEADERS)",
                )
                raise _Refused  # stops the parser; data_received answers 431
            self._count_head_bytes(len(name) + len(value) + len(b": \r\n"))
            super().on_header(name, value)

        def _count_head_bytes(self, size: int) -> None:
            self._parsed_head_bytes += size
            if self._parsed_head_bytes > limits.max_header_bytes:
                self._refusal = head_too_large
                raise _Refused  # stops the parser; data_received answers 431

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            self._head_since = None
            self._stop_head_timer()
            super().on_headers_complete()
            if len(self.pipeline) > limits.max_pipelined:
                self._refusal = (
                    "too_many_pipelined",
                    f"more than {limits.max_pipelined} requests sent ahead of their answers "
                    "(NEPSE_MAX_PIPELINED_REQUESTS)",
                )
                raise _Refused  # stops the parser; data_received closes the connection
            if self.cycle is not None and (self._stopping or self._too_old()):
                self.cycle.keep_alive = False

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            # A request read now, whose answer waits for nothing, is answered as soon as its
            # body is in, in this callback: no task to create and schedule.
            if self._parsing and answers_inline(cycle.scope):
                self._inline = (cycle, app)
            else:
                super()._start_asgi_task(cycle, app)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            # The whole body is in hand before the application reads it: no need to time it.
            # (uvicorn types the scope as the ASGI keys only; this one is the service's own.)
            cast(dict[str, Any], self.scope)[BODY_RECEIVED_KEY] = True
            # What follows on this connection is the next request's head; its timer starts
            # with its first byte (until then uvicorn's keep-alive timeout applies).
            self._in_head = True
            self._head_bytes = 0
            if self._inline is not None:
                cycle, app = self._inline
                self._inline = None
                self._answer_inline(cycle.run_asgi(app))

        def _answer_inline(self, answer: Coroutine[Any, Any, None]) -> None:
            """Runs `answer` up to its end or its first wait; a task continues it from there
            (writing to a client that does not read, say), counted in `tasks` as uvicorn's
            are."""
            try:
                awaited = answer.send(None)
            except StopIteration:
                return
            task = self.loop.create_task(_go_on(_Started(answer, awaited)))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

        def shutdown(self) -> None:
            self._stopping = True
            if self.cycle is None or self.cycle.response_complete:
                self.loop.call_later(limits.drain_idle_seconds, self._close_if_idle)
            else:
                self.cycle.keep_alive = False

        def _close_if_idle(self) -> None:
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self._in_head_started() and not self.transport.is_closing():
                self.transport.close()

        def _in_head_started(self) -> bool:
            return self._in_head and self._head_bytes > 0

        def _too_old(self) -> bool:
            age = limits.max_age_seconds
            return age > 0 and self.loop.time() - self._opened_at >= age

        def _refuse(self, reason: str, message: str) -> None:
            if self.transport.is_closing():
                return
            refused(reason)
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_refusal(_STATUS_431, message))
            # else a pipelined request's response is still being written: just close
            self.transport.close()
            self._in_head = False
            self._stop_head_timer()

        def _start_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(
                limits.header_timeout_seconds, self._head_timed_out
            )

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._in_head and not self.transport.is_closing():
                refused("header_timeout")
                self.transport.close()

    return LimitedHttpToolsProtocol
