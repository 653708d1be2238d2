"""A maximum-size /v1/predict/bars request cannot starve small ones: its body is parsed (bars
checked, features computed) in a worker process, so the serving process keeps its interpreter
for the small requests. Read from /proc, not from a clock: the serving process's CPU time for
the heavy request is a small share of the worker's, and small requests are answered while the
heavy one is still being worked on."""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import pytest
from serving_kit import children_of, cpu_seconds, example_row

from nepse_predictor.features import MIN_BARS

MAX_BARS = 50_000  # the default NEPSE_MAX_BARS
HEAVY_REQUESTS = 4
SMALL_REQUESTS = 20


def largest_bars_body() -> bytes:
    bars = [
        {"open": 100.0, "high": 101.0 + i % 3, "low": 99.0, "close": 100.5, "volume": 1000.0 + i}
        for i in range(MIN_BARS)
    ]
    series = [{"symbol": f"S{i}", "bars": bars} for i in range(MAX_BARS // MIN_BARS)]
    return orjson.dumps({"series": series})


def workers_cpu(server) -> float:
    return sum(cpu_seconds(pid) for pid in children_of(server.process.pid))


@pytest.fixture
def heavy_server(start_server, trained_model):
    server = start_server(trained_model)
    # The worker pool starts with the first large body; start it before anything is counted.
    warm = server.post("/v1/predict", {"instances": [example_row()] * 2000})
    assert warm.status_code == 200
    assert children_of(server.process.pid)
    return server


def test_the_largest_bars_request_is_worked_on_outside_the_serving_process(heavy_server) -> None:
    server = heavy_server
    body = largest_bars_body()
    served_before, workers_before = cpu_seconds(server.process.pid), workers_cpu(server)
    for _ in range(3):
        answer = server.post("/v1/predict/bars", body, timeout=60)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == MAX_BARS // MIN_BARS
    served = cpu_seconds(server.process.pid) - served_before
    parsed = workers_cpu(server) - workers_before
    assert parsed > 0.1, f"the workers spent {parsed:.2f} s: the bodies were not parsed there"
    assert served < 0.5 * parsed, f"serving process {served:.2f} s, workers {parsed:.2f} s"


def test_small_requests_are_answered_while_heavy_ones_are_worked_on(heavy_server) -> None:
    server = heavy_server
    body = largest_bars_body()
    heavy_done = threading.Event()
    heavy_statuses: list[int] = []

    def send_heavy() -> None:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            for _ in range(HEAVY_REQUESTS):
                response = client.post(
                    "/v1/predict/bars", content=body, headers={"content-type": "application/json"}
                )
                heavy_statuses.append(response.status_code)
        heavy_done.set()

    workers_before = workers_cpu(server)
    heavy = threading.Thread(target=send_heavy)
    heavy.start()
    while workers_cpu(server) == workers_before and heavy.is_alive():
        time.sleep(0.005)  # until a worker has the first heavy body
    small = {"features": example_row()}
    answered_meanwhile = 0
    while not heavy_done.is_set() and answered_meanwhile < SMALL_REQUESTS:
        response = server.post("/v1/predict", small)
        assert response.status_code == 200
        answered_meanwhile += not heavy_done.is_set()
    heavy.join(timeout=120)
    assert heavy_statuses == [200] * HEAVY_REQUESTS
    assert answered_meanwhile >= SMALL_REQUESTS, f"{answered_meanwhile} small answers"
