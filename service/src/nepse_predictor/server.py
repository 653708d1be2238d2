"""Run the app under uvicorn (uvloop + httptools), with a graceful SIGTERM.

On SIGTERM or SIGINT uvicorn stops accepting connections, closes idle keep-alive connections,
lets in-flight requests finish (up to NEPSE_GRACEFUL_TIMEOUT_SECONDS), then runs the lifespan
shutdown (the prediction log is flushed to Redis) and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nepse_predictor.config import Settings
from nepse_predictor.logging_setup import configure_logging

if TYPE_CHECKING:
    import uvicorn  # imported when serving, after the settings are read

log = logging.getLogger("nepse_predictor.server")


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    import uvicorn

    from nepse_predictor.app import create_app
    from nepse_predictor.http_protocol import ConnectionLimits, limited_protocol

    app = create_app(settings)
    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout_seconds=settings.header_timeout_seconds,
        max_connections=settings.max_connections,
        max_pipelined=settings.max_pipelined_requests,
        max_age_seconds=settings.connection_max_age_seconds,
        drain_idle_seconds=settings.drain_idle_seconds,
    )
    # uvicorn annotates these as whole seconds but takes any number (they become event loop
    # timers and wait_for timeouts); a fractional setting is passed as it is.
    timeouts: dict[str, Any] = {
        "timeout_graceful_shutdown": settings.graceful_timeout_seconds,
        "timeout_keep_alive": settings.keep_alive_seconds,
    }
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=limited_protocol(limits, app.state.metrics.count_refused, app.serving.answers_inline),
        ws="none",
        proxy_headers=False,  # nothing here reads the client address
        lifespan="on",
        access_log=False,  # the JSON access line comes from ServingMiddleware
        log_config=None,  # keep configure_logging's JSON handler
        server_header=False,
        **timeouts,
    )


def _server_class() -> type[uvicorn.Server]:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, except that a signal that ended in a graceful shutdown is not
        raised again afterwards, so a drained SIGTERM exits with status 0, not "killed"."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    if self._captured_signals:
                        log.info(
                            "stopped on signal %s after draining in-flight requests",
                            signal.Signals(self._captured_signals[-1]).name,
                        )
                    self._captured_signals.clear()

    return GracefulServer


def serve(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; the return value is the process exit code."""
    configure_logging()
    server = _server_class()(uvicorn_config(settings))
    server.run()
    if not server.started:
        log.error(
            "server did not start (is %s:%s free?)",
            settings.host,
            settings.port,
            extra={"host": settings.host, "port": settings.port},
        )
        return 1
    return 0
