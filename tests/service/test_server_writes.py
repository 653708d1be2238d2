"""How answers leave the server, counted by the client's kernel (TCP_INFO): each answer's
head and body in one TCP segment, and a `100 Continue` at once, before the body it asks for."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from serving_kit import Server, example_row, wait_until

BODY = orjson.dumps({"features": example_row()})
# struct tcp_info (linux/tcp.h): tcpi_data_segs_in, the segments received that carried data.
DATA_SEGS_IN_OFFSET = 152
ANSWERS = 50


def _request(path: bytes, body: bytes = BODY, extra: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n%s" % (path, len(body), extra, body)
    )


class Connection:
    def __init__(self, port: int, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # set before connecting, so the window is small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""

    def data_segments_in(self) -> int:
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        return struct.unpack_from("I", info, DATA_SEGS_IN_OFFSET)[0]

    def interim(self) -> bytes:
        """The head of an interim answer (it has no body)."""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        return head

    def answer(self) -> tuple[bytes, bytes]:
        """The next answer's head and body; what follows it stays for the next call."""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buffer += chunk
        head, rest = self.buffer.split(b"\r\n\r\n", 1)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buffer = rest[length:]
        return head, rest[:length]


@pytest.mark.parametrize(
    "path",
    [b"/v1/predict", b"/v2/models/nepse-predictor/infer", b"/v1/no-such-route"],
    ids=["prediction", "oip-refusal", "fastapi-404"],
)
def test_each_answer_is_one_tcp_segment(server: Server, path: bytes) -> None:
    conn = Connection(server.port)
    before = conn.data_segments_in()
    for _ in range(ANSWERS):
        conn.sock.sendall(_request(path))
        head, _body = conn.answer()
        assert head.startswith(b"HTTP/1.1 "), head
    assert conn.data_segments_in() - before == ANSWERS


def test_100_continue_is_sent_before_the_body_it_asks_for(server: Server) -> None:
    conn = Connection(server.port)
    request = _request(b"/v1/predict", extra=b"Expect: 100-continue\r\n")
    head_only, body = request.split(b"\r\n\r\n", 1)
    conn.sock.sendall(head_only + b"\r\n\r\n")

    interim = conn.interim()
    assert interim.startswith(b"HTTP/1.1 100 Continue"), interim

    conn.sock.sendall(body)
    head, answer = conn.answer()
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert len(orjson.loads(answer)["predictions"]) == 1


def test_answers_to_concurrent_requests_leave_whole_and_in_order(server: Server) -> None:
    """Requests on many connections at once are answered in one event-loop turn: each
    connection still gets its own answers, each in one segment, in the order it asked."""
    conns = [Connection(server.port) for _ in range(8)]
    before = [conn.data_segments_in() for conn in conns]
    rounds = 20
    for round_number in range(rounds):
        for index, conn in enumerate(conns):
            request_id = b"conn-%d-round-%d" % (index, round_number)
            conn.sock.sendall(_request(b"/v1/predict", extra=b"X-Request-Id: %s\r\n" % request_id))
        for index, conn in enumerate(conns):
            head, body = conn.answer()
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert b"x-request-id: conn-%d-round-%d" % (index, round_number) in head
            assert len(orjson.loads(body)["predictions"]) == 1
    for conn, segments in zip(conns, before, strict=True):
        assert conn.data_segments_in() - segments == rounds


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    conn = Connection(server.port)
    paths = [b"/v1/predict", b"/v1/no-such-route", b"/v1/predict", b"/v2/models/x/infer"]
    conn.sock.sendall(b"".join(_request(path) for path in paths))
    statuses = [conn.answer()[0].split(b" ")[1] for _ in paths]
    assert statuses == [b"200", b"404", b"200", b"404"]


@pytest.fixture(scope="module")
def patient(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that lets a client send many requests ahead of their answers."""
    log_dir = tmp_path_factory.mktemp("patient")
    server = Server(trained_model, log_dir / "server.log", {"NEPSE_MAX_PIPELINED_REQUESTS": "1000"})
    yield server
    server.stop()


def send_queue_bytes(server_port: int, client_port: int) -> int:
    """Bytes the server's end of a loopback connection holds unsent (/proc/net/tcp)."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[4].split(":")[0], 16)
    raise AssertionError(f"no connection {local} -> {remote} in /proc/net/tcp")


def test_answers_that_wait_for_a_slow_reader_arrive_whole_and_in_order(patient: Server) -> None:
    """Answers are written as their requests are read; once a client that reads nothing has
    filled its connection's buffers, the next answer waits for it (in a task) and the requests
    behind it queue. When the client reads, every answer arrives, whole and in order."""
    count = 300  # their answers, /metrics pages of about 30 KB, are more than the buffers take
    conn = Connection(patient.port, receive_buffer=4096)
    client_port = conn.sock.getsockname()[1]
    conn.sock.sendall(
        b"".join(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-%d\r\n\r\n" % index
            for index in range(count)
        )
    )
    queued = [0]

    def buffers_full() -> bool:  # the queue has stopped growing: the server waits
        before = queued[0]
        time.sleep(0.3)
        queued[0] = send_queue_bytes(patient.port, client_port)
        return queued[0] > 64 * 1024 and queued[0] == before

    wait_until(buffers_full, timeout=30, what="the connection's buffers to fill")
    for index in range(count):
        head, body = conn.answer()
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert b"x-request-id: slow-%d\r\n" % index in head
        assert body.endswith(b"\n") and b"nepse_http_requests_total" in body
    assert patient.post("/v1/predict", {"features": example_row()}).status_code == 200
