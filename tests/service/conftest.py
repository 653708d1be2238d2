"""Fixtures for the server tests: real uvicorn processes and a real redis-server on loopback.

`trained_model` (a model trained once per session) comes from tests/conftest.py; the classes
behind these fixtures are in serving_kit.py.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serving_kit import RedisServer, Server

from testkit.net import wait_for_http


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start servers for one test; all are stopped at its end."""
    started: list[Server] = []

    def start(
        model_dir: Path | None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        **settings: Any,
    ) -> Server:
        """`settings` become NEPSE_* variables; `env` is passed as it is; `args` follow
        `serve`."""
        log_dir = tmp_path_factory.mktemp("server")
        variables = {f"NEPSE_{k.upper()}": str(v) for k, v in settings.items()}
        server = Server(model_dir, log_dir / "server.log", {**variables, **(env or {})}, args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGKILL if server.process.poll() is None else signal.SIGTERM)


@pytest.fixture(scope="module")
def server(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ready server on the trained model, shared by a test module."""
    log_dir = tmp_path_factory.mktemp("server")
    srv = Server(trained_model, log_dir / "server.log", {"NEPSE_TRACK": "canary"})
    wait_for_http(f"{srv.base_url}/ready", timeout=30)
    yield srv
    srv.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    redis = RedisServer(tmp_path)
    yield redis
    if redis.process is not None and redis.process.poll() is None:
        redis.resume()
    redis.kill()
