"""Driving one release step under a request loop (the traffic and Argo CD tiers), and
reporting it as a TRAFFIC line."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from testkit.requestloop import Answer, LoopResult, RequestLoop

# Requests every scenario sends at least, and the quiet time after a step has settled.
MIN_REQUESTS = 1000
TAIL_SECONDS = 3.0


@dataclass
class Step:
    at: float = 0.0

    def mark(self) -> None:
        self.at = time.monotonic()


@contextmanager
def under_load(
    host: str, port: int, *, requests: int = MIN_REQUESTS, **loop_args: object
) -> Iterator[tuple[RequestLoop, Step]]:
    """A running loop and a Step to mark; on exit, keep going until ``requests`` are in."""
    loop = RequestLoop(host, port, **loop_args)
    step = Step()
    loop.start()
    try:
        loop.run_until(requests=50, deadline=60)
        yield loop, step
        time.sleep(TAIL_SECONDS)
        loop.run_until(requests=requests)
    finally:
        loop.stop()


def traffic_line(
    name: str, result: LoopResult, *, seconds: float | None = None, share: float | None = None
) -> str:
    parts = [f"TRAFFIC scenario={name}", f"requests={result.requests}",
             f"failed={len(result.failures)}"]  # fmt: skip
    if seconds is not None:
        parts.append(f"seconds={seconds:.2f}")
    if share is not None:
        parts.append(f"share={share:.3f}")
    return " ".join(parts)


def assert_nothing_failed(result: LoopResult) -> None:
    reasons = dict(result.failure_reasons())
    assert not reasons, f"{len(result.failures)} of {result.requests} requests failed: {reasons}"


def version_is(version: str) -> Callable[[Answer], bool]:
    return lambda answer: answer.served and answer.version == version
