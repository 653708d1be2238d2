"""SIGTERM drains in-flight requests before the process exits."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import orjson
from serving_kit import children_of, example_row, wait_until


def test_sigterm_lets_an_in_flight_request_finish(start_server, trained_model) -> None:
    server = start_server(trained_model)
    body = orjson.dumps({"features": example_row()})
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        head = (
            f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-Id: in-flight\r\n\r\n"
        ).encode()
        # The request is in flight: headers and half the body sent when SIGTERM arrives.
        sock.sendall(head + body[:10])
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.process.poll() is None, "the server exited with a request in flight"
        sock.sendall(body[10:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 200 OK", response
    assert b'"probability"' in response
    assert server.process.wait(timeout=20) == 0
    log = server.log_text()
    assert '"request_id":"in-flight"' in log
    assert "Application shutdown complete" in log


def test_sigterm_on_an_idle_server_exits_promptly_and_cleanly(start_server, trained_model) -> None:
    server = start_server(trained_model)
    server.client.get("/health")  # leaves an idle keep-alive connection open
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5


def test_large_bodies_are_parsed_in_a_worker_that_ends_with_the_server(
    start_server, trained_model
) -> None:
    server = start_server(trained_model)
    assert children_of(server.process.pid) == []  # no worker until a large body arrives
    batch = server.post("/v1/predict", {"instances": [example_row()] * 2000})
    assert batch.status_code == 200 and len(batch.json()["predictions"]) == 2000
    bad = [example_row()] * 2000
    bad[1500] = {**bad[1500], "rsi_14": "high"}
    refused = server.post("/v1/predict", {"instances": bad})
    assert refused.status_code == 422 and refused.json()["field"] == "instances[1500].rsi_14"
    workers = children_of(server.process.pid)
    assert workers
    assert server.stop(signal.SIGTERM) == 0
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
        what="the worker processes to end",
    )
