"""The optional Redis: prediction cache, capped prediction log, and serving through outages.

A real redis-server is started on a loopback port for each test, and killed or frozen
(SIGSTOP) while the server keeps answering."""

from __future__ import annotations

import time

import orjson
import pytest
import redis
from serving_kit import RedisServer, example_row, oip_body, sample_series, wait_until

from testkit.net import free_port

INFER = "/v2/models/nepse-predictor/infer"


@pytest.fixture
def cached_server(start_server, trained_model, redis_server: RedisServer):
    return start_server(trained_model, redis_url=redis_server.url, track="stable")


def test_a_repeated_request_is_answered_from_the_cache(cached_server, redis_server) -> None:
    server = cached_server
    body = oip_body([example_row(0.1), example_row(0.2)])
    first = server.post(INFER, body, headers={"x-request-id": "first"})
    wait_until(
        lambda: server.metric("nepse_cache_events_total", event="store") >= 1,
        what="the cache entry to be stored",
    )
    second = server.post(INFER, body, headers={"x-request-id": "second"})
    assert first.json()["outputs"] == second.json()["outputs"]
    assert server.metric("nepse_cache_events_total", event="hit") == 1
    assert server.metric("nepse_cache_events_total", event="miss") == 1
    lines = {line.get("request_id"): line for line in server.log_lines()}
    assert lines["first"]["cache"] == "miss" and lines["second"]["cache"] == "hit"
    keys = redis.Redis.from_url(redis_server.url).keys("nepse:cache:*")
    assert keys and all(k.startswith(b"nepse:cache:v1:") for k in keys)


def test_bars_are_cached_on_the_bars_sent(cached_server) -> None:
    server = cached_server
    bars = next(iter(sample_series(40).values()))
    request = {"series": [{"symbol": "NABIL", "bars": bars}]}
    first = server.post("/v1/predict/bars", request).json()
    wait_until(lambda: server.metric("nepse_cache_events_total", event="store") >= 1)
    second = server.post("/v1/predict/bars", request).json()
    assert server.metric("nepse_cache_events_total", event="hit") == 1
    assert first["predictions"] == second["predictions"]


def test_every_prediction_is_logged_to_a_capped_stream(
    start_server, trained_model, redis_server
) -> None:
    server = start_server(
        trained_model,
        redis_url=redis_server.url,
        track="canary",
        prediction_stream_maxlen=50,
        cache_ttl_seconds=0,
    )
    for i in range(300):
        response = server.post(
            "/v1/predict", {"features": example_row(i / 300)}, headers={"x-request-id": f"req-{i}"}
        )
        assert response.status_code == 200
    client = redis.Redis.from_url(redis_server.url)
    wait_until(
        lambda: server.metric("nepse_cache_events_total", event="log_written") == 300,
        what="all 300 log entries written",
    )
    length = client.xlen("nepse:predictions")
    assert 50 <= length < 300  # MAXLEN ~ trims in whole nodes: near 50, never unbounded
    _, fields = client.xrevrange("nepse:predictions", count=1)[0]
    entry = {k.decode(): v.decode() for k, v in fields.items()}
    assert entry["request_id"] == "req-299"
    assert entry["track"] == "canary" and entry["model_version"] == "v1"
    assert entry["route"] == "/v1/predict" and entry["rows"] == "1"
    [p] = orjson.loads(entry["probability"])
    assert 0 <= p <= 1 and float(entry["latency_ms"]) > 0
    assert "features" not in entry
    assert server.metric("nepse_cache_events_total", event="hit") == 0  # cache off (TTL 0)


def test_killing_redis_mid_test_keeps_serving(cached_server, redis_server) -> None:
    server = cached_server
    for i in range(5):
        assert server.post(INFER, oip_body([example_row(i)])).status_code == 200
    assert server.metric("nepse_redis_errors_total") == 0
    redis_server.kill()
    started = time.monotonic()
    for i in range(30):
        response = server.post(INFER, oip_body([example_row(i)]))
        assert response.status_code == 200, response.text
    assert time.monotonic() - started < 10
    assert server.client.get("/ready").status_code == 200
    wait_until(lambda: server.metric("nepse_redis_errors_total") >= 1, what="a Redis error")
    assert server.metric("nepse_cache_events_total", event="bypass") >= 1
    warnings = [line for line in server.log_lines() if line.get("level") == "warning"]
    assert len(warnings) == 1, warnings  # one warning for the outage, not one per request
    assert "Redis unavailable" in warnings[0]["msg"]
    assert warnings[0]["redis"] == redis_server.url


def test_a_frozen_redis_costs_at_most_its_timeout_and_recovers(
    start_server, trained_model, redis_server
) -> None:
    server = start_server(trained_model, redis_url=redis_server.url, redis_timeout_ms=100)
    body = oip_body([example_row(0.5)])
    assert server.post(INFER, body).status_code == 200
    redis_server.pause()
    try:
        for i in range(20):
            started = time.monotonic()
            response = server.post(INFER, oip_body([example_row(i)]))
            assert response.status_code == 200
            assert time.monotonic() - started < 1.0
        wait_until(lambda: server.metric("nepse_redis_errors_total") >= 1)
    finally:
        redis_server.resume()

    # Back: after the back-off the cache answers again and the log says so.
    def hits_again() -> bool:
        server.post(INFER, body)
        return server.metric("nepse_cache_events_total", event="hit") >= 1

    wait_until(hits_again, timeout=20, what="cache hits after Redis came back")
    assert any("answers again" in line.get("msg", "") for line in server.log_lines())


def test_redis_down_at_startup_still_serves(start_server, trained_model) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = start_server(trained_model, redis_url=url)
    assert server.client.get("/ready").status_code == 200
    for _ in range(3):
        assert server.post("/v1/predict", {"features": example_row()}).status_code == 200
    assert server.metric("nepse_redis_errors_total") >= 1
    assert any("Redis unavailable" in line.get("msg", "") for line in server.log_lines())
