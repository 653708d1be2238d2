"""A bounded, steady loop of prediction requests, and what its answers show.

Each worker is a urllib3 connection pool of one keep-alive connection, the client most Python
callers use (through requests): like Go's and curl's, it notices a connection the server has
closed while idle and opens a new one, and it never retries a request (``retries=False``).
Workers send ``POST /v1/predict`` at a fixed pace. An answer counts as served only when it is
a 200 whose body holds a prediction; every other outcome (another status, a reset or refused
connection, a timeout) is a failure, recorded with its reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import urllib3

FEATURES = {
    "ret_1": 0.01,
    "ret_5": 0.02,
    "ret_20": 0.05,
    "sma_ratio_5_20": 0.01,
    "close_sma_20": 0.02,
    "volatility_20": 0.015,
    "rsi_14": 55,
    "volume_z_20": 0.3,
    "range_pct": 0.02,
    "close_location": 0.7,
}
BODY = json.dumps({"features": FEATURES}).encode()


@dataclass(frozen=True)
class Answer:
    started: float
    latency: float
    status: int
    version: str = ""
    track: str = ""
    request_id: str = ""
    error: str = ""

    @property
    def served(self) -> bool:
        return self.status == 200 and not self.error


@dataclass
class LoopResult:
    answers: list[Answer] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.answers)

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.served]

    def failure_reasons(self) -> Counter[str]:
        return Counter(a.error or f"HTTP {a.status}" for a in self.failures)

    def share(self, track: str, since: float = 0.0) -> float:
        served = [a for a in self.answers if a.served and a.started >= since]
        return sum(a.track == track for a in served) / max(len(served), 1)

    def tracks(self) -> Counter[str]:
        return Counter(a.track for a in self.answers if a.served)

    def settled_after(self, step: float, done: Callable[[Answer], bool]) -> float | None:
        """Seconds from ``step`` to the first answer after which every answer is ``done``."""
        after = sorted((a for a in self.answers if a.started >= step), key=lambda a: a.started)
        last_other = max((i for i, a in enumerate(after) if not done(a)), default=-1)
        if last_other == len(after) - 1:
            return None
        return after[last_other + 1].started - step

    def latency_quantile(self, q: float, since: float = 0.0, until: float = float("inf")) -> float:
        values = sorted(a.latency for a in self.answers if a.served and since <= a.started <= until)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]


class RequestLoop:
    """Workers sending predictions to ``host:port`` until stopped (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        workers: int = 4,
        rate: float = 150.0,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        path: str = "/v1/predict",
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.workers, self.interval = workers, workers / rate
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.timeout = timeout
        self.result = LoopResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counter = 0

    def __enter__(self) -> RequestLoop:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> LoopResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        return self.result

    def run_until(self, *, requests: int, deadline: float = 180.0) -> None:
        """Keep going until at least ``requests`` answers are in (or fail at the deadline)."""
        end = time.monotonic() + deadline
        while self.result.requests < requests:
            if time.monotonic() > end:
                raise TimeoutError(f"only {self.result.requests} of {requests} requests in time")
            time.sleep(0.05)

    def wait_for(self, what: str, done: Callable[[Iterable[Answer]], bool], timeout: float) -> None:
        end = time.monotonic() + timeout
        while not done(self.recent(2.0)):
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.1)

    def recent(self, seconds: float) -> list[Answer]:
        since = time.monotonic() - seconds
        with self._lock:
            return [a for a in self.result.answers if a.started >= since]

    def _next_id(self, worker: int) -> str:
        with self._lock:
            self._counter += 1
            return f"loop-{worker}-{self._counter}"

    def _work(self, worker: int) -> None:
        pool = urllib3.HTTPConnectionPool(
            self.host, self.port, maxsize=1, block=True, retries=False, timeout=self.timeout
        )
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += self.interval
            request_id = self._next_id(worker)
            started = time.monotonic()
            try:
                response = pool.request(
                    "POST",
                    self.path,
                    body=BODY,
                    headers={**self.headers, "X-Request-Id": request_id},
                )
                body = response.data
                answer = Answer(
                    started,
                    time.monotonic() - started,
                    response.status,
                    response.headers.get("X-Model-Version", ""),
                    response.headers.get("X-Track", ""),
                    response.headers.get("X-Request-Id", ""),
                    "" if b'"predictions"' in body or response.status != 200 else "no prediction",
                )
            except urllib3.exceptions.HTTPError as exc:
                reason = getattr(exc, "reason", None) or exc
                answer = Answer(started, time.monotonic() - started, 0, error=type(reason).__name__)
            with self._lock:
                self.result.answers.append(answer)
            pause = next_at - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)
            else:
                next_at = time.monotonic()
        pool.close()
