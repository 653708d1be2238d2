"""Hostile clients against a real server process: nothing they send grows the server's memory,
its metrics or its open connections without bound. Memory and descriptors are read from /proc;
every loop is bounded; everything is on loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

import orjson
import pytest
from serving_kit import Server, example_row, wait_until

from nepse_predictor.paths import ROUTE_TEMPLATES, UNMATCHED

LIMITS = {
    "header_timeout_seconds": 1,
    "body_timeout_seconds": 1,
    "keep_alive_seconds": 1,
    "max_header_bytes": 16384,
    "max_headers": 50,
    "max_connections": 40,
    "max_pipelined_requests": 8,
    "access_log": "false",
}


@pytest.fixture(scope="module")
def limited(trained_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server with short timeouts and small caps, so each limit is reached quickly."""
    log_dir = tmp_path_factory.mktemp("limited")
    variables = {f"NEPSE_{key.upper()}": str(value) for key, value in LIMITS.items()}
    server = Server(trained_model, log_dir / "server.log", variables)
    yield server
    server.stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def route_labels(metrics_text: str) -> set[str]:
    labels = set()
    for line in metrics_text.splitlines():
        if line.startswith("nepse_http_requests_total{"):
            labels.add(line.split('route="', 1)[1].split('"', 1)[0])
    return labels


def test_aborted_posts_with_long_paths_create_no_metric_series(limited: Server) -> None:
    templates = set(ROUTE_TEMPLATES)

    def aborted() -> float:
        return limited.metric(
            "nepse_http_requests_total", route=UNMATCHED, method="POST", status="499"
        )

    before = aborted()
    size_before = len(limited.client.get("/metrics").content)
    rss_before = rss_bytes(limited.process.pid)
    for index in range(2000):
        path = f"/v1/predict/{index}/" + "x" * 2000
        with connect(limited) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode())
    wait_until(
        lambda: aborted() == before + 2000, what="2000 aborted requests counted as unmatched"
    )
    text = limited.client.get("/metrics").text
    assert route_labels(text) <= templates | {UNMATCHED}
    assert len(text.encode()) - size_before < 8192
    assert rss_bytes(limited.process.pid) - rss_before < 16 * 1024 * 1024


def test_aborted_posts_on_a_known_route_are_labelled_with_its_template(limited: Server) -> None:
    route = "/v2/models/{model_name}/versions/{model_version}/infer"
    with connect(limited) as sock:
        sock.sendall(
            b"POST /v2/models/abc/versions/def/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
    wait_until(
        lambda: limited.metric("nepse_http_requests_total", route=route, status="499") == 1,
        what="an aborted versioned inference counted under its template",
    )


def test_an_unknown_method_is_one_other_label(limited: Server) -> None:
    with connect(limited) as sock:
        sock.sendall(b"PROPFIND /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 405")
    assert 'method="other"' in limited.client.get("/metrics").text
    assert "PROPFIND" not in limited.client.get("/metrics").text


def test_an_oversized_unfinished_header_gets_431_without_buffering_it(limited: Server) -> None:
    rss_before = rss_bytes(limited.process.pid)
    with connect(limited) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:  # the server closed the connection
            pass
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"NEPSE_MAX_HEADER_BYTES" in answer and b'"error"' in answer
    assert sent < 8 * 1024 * 1024
    assert rss_bytes(limited.process.pid) - rss_before < 16 * 1024 * 1024
    assert limited.metric("nepse_http_refused_total", reason="header_too_large") >= 1
    assert limited.client.get("/health").status_code == 200


def head_of_size(size: int) -> bytes:
    """A complete GET /health head of exactly `size` bytes."""
    start, end = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize("pieces", [1, 3], ids=["in-one-write", "in-three-writes"])
def test_a_complete_head_over_the_limit_gets_431(limited: Server, pieces: int) -> None:
    head = head_of_size(LIMITS["max_header_bytes"] + 200)
    step = -(-len(head) // pieces)
    with connect(limited) as sock:
        for offset in range(0, len(head), step):
            sock.sendall(head[offset : offset + step])
            time.sleep(0.05)  # each piece its own read
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"NEPSE_MAX_HEADER_BYTES" in answer


def test_a_head_within_the_limit_is_answered(limited: Server) -> None:
    with connect(limited) as sock:
        sock.sendall(head_of_size(LIMITS["max_header_bytes"] - 200))
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_too_many_header_fields_get_431(limited: Server) -> None:
    fields = "".join(f"X-F{i}: {i}\r\n" for i in range(60))
    with connect(limited) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"NEPSE_MAX_HEADERS" in answer
    fewer = {f"x-f{i}": str(i) for i in range(40)}
    assert limited.client.get("/health", headers=fewer).status_code == 200


def test_a_head_sent_byte_by_byte_is_cut_off_at_the_header_timeout(limited: Server) -> None:
    started = time.monotonic()
    closed = False
    with connect(limited) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        for _ in range(40):  # 8 s of trickling at most
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
    assert closed
    assert time.monotonic() - started < 4


def test_idle_and_slow_connections_are_closed_and_cost_no_descriptors(limited: Server) -> None:
    pid = limited.process.pid
    baseline = open_sockets(pid)
    idle = [connect(limited) for _ in range(30)]
    wait_until(lambda: open_sockets(pid) >= baseline + 30, what="30 connections accepted")
    wait_until(lambda: open_sockets(pid) <= baseline, timeout=6, what="idle connections closed")
    for sock in idle:
        assert read_until_closed(sock, timeout=1) == b""
        sock.close()
    assert limited.metric("nepse_http_refused_total", reason="header_timeout") >= 30


def test_a_slow_body_gets_408_at_the_body_timeout(limited: Server) -> None:
    started = time.monotonic()
    with connect(limited) as sock:
        sock.sendall(
            b'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"features": '
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"NEPSE_BODY_TIMEOUT_SECONDS" in answer
    assert time.monotonic() - started < 4


def test_an_idle_kept_alive_connection_is_closed(limited: Server) -> None:
    with connect(limited) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started < 4


def test_connections_past_the_bound_are_closed_at_once(limited: Server) -> None:
    held = [connect(limited) for _ in range(40)]
    try:
        time.sleep(0.2)
        with connect(limited) as extra:
            started = time.monotonic()
            assert read_until_closed(extra, timeout=2) == b""
            assert time.monotonic() - started < 1
    finally:
        for sock in held:
            sock.close()
    assert limited.metric("nepse_http_refused_total", reason="too_many_connections") >= 1
    wait_until(
        lambda: limited.post("/v1/predict", {"features": example_row()}).status_code == 200,
        what="the server answering again",
    )


def _predict_request() -> bytes:
    body = orjson.dumps({"features": example_row()})
    return (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def test_requests_pipelined_within_the_bound_are_all_answered(limited: Server) -> None:
    with connect(limited) as sock:
        sock.sendall(_predict_request() * 8)
        sock.settimeout(5)
        received = b""
        while received.count(b"HTTP/1.1 200 ") < 8:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {received.count(b'HTTP/1.1 200 ')} answers"
            received += chunk


def test_clients_pipelining_without_reading_are_closed_and_cost_no_memory(
    limited: Server,
) -> None:
    """Each pipelined request costs uvicorn a queued cycle; without the bound, 10 clients
    sending 5,000 each and reading nothing held about 150 MB. Answers leave while the
    connection's buffers take them; once they are full the requests queue, and past the bound
    the connection is closed, long before the 5,000 are answered."""
    assert limited.client.get("/openapi.json").status_code == 200  # the FastAPI app is built
    rss_before = rss_bytes(limited.process.pid)
    requests = _predict_request() * 5000
    for _ in range(10):
        with connect(limited) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(5)
            # The server may close the connection while the requests are still going out.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(requests)
            assert read_until_closed(sock).count(b"HTTP/1.1 ") < 1000
    assert rss_bytes(limited.process.pid) - rss_before < 16 * 1024 * 1024
    assert limited.metric("nepse_http_refused_total", reason="too_many_pipelined") >= 10
    assert limited.post("/v1/predict", {"features": example_row()}).status_code == 200
