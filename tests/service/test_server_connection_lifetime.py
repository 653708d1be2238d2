"""Kept-alive connections end without racing their clients: a maximum age, and a SIGTERM that
answers the next request with `connection: close` instead of cutting an idle connection."""

from __future__ import annotations

import http.client
import signal
import time

import orjson
from serving_kit import example_row

BODY = orjson.dumps({"features": example_row()})


def _predict(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("POST", "/v1/predict", BODY, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response


def _closed_by_peer(conn: http.client.HTTPConnection, timeout: float) -> bool:
    assert conn.sock is not None
    conn.sock.settimeout(timeout)
    try:
        return conn.sock.recv(1) == b""
    except TimeoutError:
        return False


def test_a_connection_past_its_maximum_age_is_told_to_close(start_server, trained_model) -> None:
    server = start_server(trained_model, connection_max_age_seconds=1)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    first = _predict(conn)
    assert first.status == 200
    assert first.getheader("connection") != "close"
    time.sleep(1.2)
    old = _predict(conn)
    assert old.status == 200
    assert old.getheader("connection") == "close"
    assert _closed_by_peer(conn, timeout=2)


def test_connections_live_on_with_no_maximum_age(start_server, trained_model) -> None:
    server = start_server(trained_model, connection_max_age_seconds=0)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(3):
        response = _predict(conn)
        assert response.status == 200
        assert response.getheader("connection") != "close"
        time.sleep(0.3)


def test_sigterm_answers_an_idle_connections_next_request_then_closes_it(
    start_server, trained_model
) -> None:
    server = start_server(trained_model, drain_idle_seconds=3)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    assert _predict(conn).status == 200  # now idle, between requests
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    after = _predict(conn)
    assert after.status == 200, "a request sent just after SIGTERM on a kept-alive connection"
    assert after.getheader("connection") == "close"
    assert _closed_by_peer(conn, timeout=2)
    assert server.process.wait(timeout=20) == 0


def test_sigterm_closes_a_connection_that_stays_idle_after_the_drain_time(
    start_server, trained_model
) -> None:
    server = start_server(trained_model, drain_idle_seconds=1)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    assert _predict(conn).status == 200
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert not _closed_by_peer(conn, timeout=0.5), "an idle connection was cut at once"
    assert _closed_by_peer(conn, timeout=3)
    assert 0.9 <= time.monotonic() - signalled < 4
    assert server.process.wait(timeout=20) == 0
