"""Kept-alive connections end without racing their clients: a maximum age, and a SIGTERM that
answers the next request with `connection: close` instead of cutting an idle connection."""

from __future__ import annotations

import signal
import socket
import time

import orjson
from serving_kit import example_row

BODY = orjson.dumps({"features": example_row()})
REQUEST = (
    b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


class Connection:
    """One raw kept-alive connection, to see exactly what the server sends and when it closes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def predict(self) -> tuple[int, dict[str, str]]:
        self.sock.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        while len(rest) < int(headers["content-length"]):
            rest += self.sock.recv(65536)
        return int(lines[0].split()[1]), headers

    def closed_by_peer(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False


def test_a_connection_past_its_maximum_age_is_told_to_close(start_server, trained_model) -> None:
    server = start_server(trained_model, connection_max_age_seconds=1)
    conn = Connection(server.port)
    status, headers = conn.predict()
    assert status == 200
    assert headers.get("connection") != "close"
    time.sleep(1.2)
    status, headers = conn.predict()
    assert status == 200
    assert headers.get("connection") == "close"
    assert conn.closed_by_peer(timeout=2)


def test_connections_live_on_with_no_maximum_age(start_server, trained_model) -> None:
    server = start_server(trained_model, connection_max_age_seconds=0)
    conn = Connection(server.port)
    for _ in range(3):
        status, headers = conn.predict()
        assert status == 200
        assert headers.get("connection") != "close"
        time.sleep(0.3)


def test_sigterm_answers_an_idle_connections_next_request_then_closes_it(
    start_server, trained_model
) -> None:
    server = start_server(trained_model, drain_idle_seconds=3)
    conn = Connection(server.port)
    assert conn.predict()[0] == 200  # now idle, between requests
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    status, headers = conn.predict()
    assert status == 200, "a request sent just after SIGTERM on a kept-alive connection"
    assert headers.get("connection") == "close"
    assert conn.closed_by_peer(timeout=2)
    assert server.process.wait(timeout=20) == 0


def test_sigterm_closes_a_connection_that_stays_idle_after_the_drain_time(
    start_server, trained_model
) -> None:
    server = start_server(trained_model, drain_idle_seconds=1)
    conn = Connection(server.port)
    assert conn.predict()[0] == 200
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert not conn.closed_by_peer(timeout=0.5), "an idle connection was cut at once"
    assert conn.closed_by_peer(timeout=3)
    assert 0.9 <= time.monotonic() - signalled < 4
    assert server.process.wait(timeout=20) == 0
