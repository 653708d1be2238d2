"""The server processes of one run: started pinned to the server CPU in their own process
groups, waited for until ready, and all stopped whatever happens."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from serving.settings import (
    LABELS,
    LOG_TAIL_LINES,
    READY_PATH,
    READY_POLL_SECONDS,
    READY_TIMEOUT_SECONDS,
    SERVER_CPU,
    BenchError,
)


@dataclass
class ServerSpec:
    key: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    # The `outputs` member that asks this server for P(up); None: not a model (hello).
    parity_outputs: list[dict[str, str]] | None


@dataclass
class Running:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started: float


@dataclass
class Processes:
    """Every server process this run started, so all of them are stopped whatever happens.

    Each server runs in its own session (process group): MLServer forks workers, and stopping
    the group stops them too.
    """

    logs: Path
    nice: int = 0
    running: list[Running] = field(default_factory=list)
    _count: int = 0

    def start(self, spec: ServerSpec, port: int) -> Running:
        self._count += 1
        log_path = self.logs / f"{spec.key}-{self._count}.log"
        argv = [arg.replace("{port}", str(port)) for arg in spec.argv]
        with log_path.open("wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen(
                [*nice_prefix(self.nice), "taskset", "-c", str(SERVER_CPU), *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=spec.env,
                cwd=spec.cwd,
                start_new_session=True,
            )
        server = Running(spec, process, port, log_path, started)
        self.running.append(server)
        return server

    def stop(self, server: Running, grace: float = 10.0) -> None:
        process = server.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Workers of a stopped server may outlive their parent for a moment.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if server in self.running:
            self.running.remove(server)

    def stop_all(self) -> None:
        for server in list(self.running):
            try:
                self.stop(server, grace=5.0)
            except Exception as exc:  # keep stopping the others
                print(
                    f"warning: could not stop {server.spec.key} (pid {server.process.pid}): {exc}",
                    file=sys.stderr,
                )


def nice_prefix(nice: int) -> list[str]:
    return ["nice", "-n", str(nice)] if nice else []


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"    (log {path} unreadable: {exc})"
    tail = text.splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in tail) if tail else "    (log is empty)"


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""

    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def http_call(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30.0
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(server: Running, timeout: float = READY_TIMEOUT_SECONDS) -> float:
    """Seconds from spawning the process to its first 200 from the model's ready route."""
    name = LABELS[server.spec.key]
    deadline = server.started + timeout
    tick = server.started
    last = "no answer yet"
    while True:
        try:
            status, _ = http_call(server.port, "GET", READY_PATH, timeout=1.0)
            if status == 200:
                return time.perf_counter() - server.started
            last = f"HTTP {status}"
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
        except http.client.HTTPException as exc:  # something else answered on the port
            last = f"{type(exc).__name__}: {str(exc)[:80]!r}"
        code = server.process.poll()
        if code is not None:
            raise BenchError(
                f"{name} exited with status {code} before it was ready "
                f"(GET {READY_PATH} on port {server.port}: {last}). "
                f"Last lines of {server.log_path}:\n{log_tail(server.log_path)}"
            )
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(
                f"{name} was not ready within {timeout:.0f} s (GET {READY_PATH} on port "
                f"{server.port}: {last}). Last lines of {server.log_path}:\n"
                f"{log_tail(server.log_path)}"
            )
        while tick <= now:
            tick += READY_POLL_SECONDS
        time.sleep(tick - now)
