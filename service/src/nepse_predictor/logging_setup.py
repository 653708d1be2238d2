"""JSON logs on stdout: one object per line.

Ordinary log records (startup, model loading, Redis warnings, uvicorn's own messages) go
through `logging` with `JsonFormatter`. The per-request line is written by `AccessLog`,
which skips the logging module (it would cost more than the request itself) and writes the
lines of many requests with one `write(2)` from a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "color_message",
}
_LINE = orjson.OPT_APPEND_NEWLINE


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """ts, level, logger, msg, any `extra=` fields, and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str | int = "INFO") -> None:
    """Route every logger (uvicorn's too) to one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The access line is ours (AccessLog); uvicorn's would be a second, non-JSON one.
    logging.getLogger("uvicorn.access").disabled = True


class AccessLog:
    """One JSON line per request, written by a background thread in batches.

    Lines are collected on the event loop and handed over every FLUSH_SECONDS (or when the
    batch is large); a writer thread does the `write(2)`, so a slow stdout (a full pipe, a
    busy disk) never stalls a request. If the writer falls more than MAX_PENDING bytes
    behind, lines are dropped and counted rather than held in memory without bound.
    """

    FLUSH_SECONDS = 0.05
    MAX_BATCH = 64 * 1024
    MAX_PENDING = 16 * 1024 * 1024

    def __init__(self, enabled: bool = True, fd: int | None = None) -> None:
        self.enabled = enabled
        if fd is None:
            try:
                fd = sys.stdout.fileno()
            except (AttributeError, OSError, ValueError):
                fd = 1
        self.fd = fd
        self.dropped = 0
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._prefix = ""
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None

    def _now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((now - second) * 1000):03d}+00:00"

    def write(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps({"ts": self._now(), **entry}, option=_LINE, default=str)
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.MAX_BATCH:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush(wait=True)
                return
            self._timer = loop.call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self, wait: bool = False) -> None:
        """Hand the collected lines to the writer; `wait` also waits until they are written."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            data = b"".join(self._lines)
            count = len(self._lines)
            self._lines.clear()
            self._size = 0
            with self._lock:
                if self._pending + len(data) > self.MAX_PENDING:
                    if not self.dropped:
                        logging.getLogger("nepse_predictor.server").warning(
                            "stdout is not keeping up; dropping access-log lines"
                        )
                    self.dropped += count
                    data = b""
                else:
                    self._pending += len(data)
            if data:
                self._start_writer()
                self._queue.put(data)
        if wait and self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=5)
            self._writer = None

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write_loop, name="access-log", daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            size = len(data)
            with contextlib.suppress(OSError):  # a closed stdout must not end the writer
                while data:
                    written = os.write(self.fd, data)
                    data = data[written:]
            with self._lock:
                self._pending -= size
