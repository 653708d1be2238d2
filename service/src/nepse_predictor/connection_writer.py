"""Writes to a connection gathered into one send() call.

uvicorn writes each response's head and body with a call each, as each request finishes. On
a virtual machine one such write, which wakes the client, costs about as much as a prediction.
Here the writes of one response are joined, and under load the answers of one event-loop turn
leave together at its end, so clients are woken once per turn rather than once per write. The
first answer of a turn still leaves at once, so a lone request (c=1) waits for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sized
from typing import Any

# Gathered writes to one connection past this size leave at once, not at the turn's end.
FLUSH_BYTES = 64 * 1024


class AnswerTurn:
    """Whether an answer has already left in the event loop's current turn (one per server;
    its connections share it)."""

    __slots__ = ("_answered",)

    def __init__(self) -> None:
        self._answered = False

    def first(self, loop: asyncio.AbstractEventLoop) -> bool:
        """True for the turn's first answer; the turn is over when the loop next runs its
        callbacks."""
        if self._answered:
            return False
        self._answered = True
        loop.call_soon(self._over)
        return True

    def _over(self) -> None:
        self._answered = False


class ConnectionWriter:
    """A connection's transport whose writes are gathered and sent in one call: when the
    event loop's turn is over, or, for the writes of one response announced by
    `hold_for(writes)`, as soon as the last of them is made if it is the turn's first answer
    and no request is waiting in a task (nothing would join it). Past FLUSH_BYTES what is
    gathered leaves at once. Every write to the connection goes through it, in order; closing
    it sends what waits first."""

    __slots__ = ("_held", "_loop", "_pending", "_queued", "_size", "_tasks", "_transport", "_turn")

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        tasks: Sized,
        turn: AnswerTurn,
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._tasks = tasks  # the server's requests being answered in tasks
        self._turn = turn
        self._pending: list[bytes] = []
        self._size = 0
        self._held = 0
        self._queued = False

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        held = self._held
        if held:
            self._held = held - 1
        if self._size > FLUSH_BYTES:
            self.flush()
        elif held == 1:  # the response's last write
            self._send_response()
        elif not held:
            self._send_at_turn_end()

    def hold_for(self, writes: int) -> None:
        """The next ``writes`` writes are one response (uvicorn writes a head, then a body)."""
        self._held = writes

    def release(self) -> None:
        """After the response: sends what a response cut short left."""
        if self._held:
            self._held = 0
            if self._pending:
                self._send_response()

    def _send_response(self) -> None:
        # At most this response's own request runs in a task (none when answered inline).
        if len(self._tasks) <= 1 and self._turn.first(self._loop):
            self.flush()
        else:
            self._send_at_turn_end()

    def _send_at_turn_end(self) -> None:
        # The loop runs the flushes queued in a turn, in order, at the start of its next turn,
        # before it answers the requests read in between: a turn's answers leave together.
        if not self._queued:
            self._queued = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._queued = False
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
