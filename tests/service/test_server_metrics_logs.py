"""Prometheus metrics and the JSON request log."""

from __future__ import annotations

from serving_kit import Server, example_row, oip_body

INFER = "/v2/models/nepse-predictor/infer"


def test_metrics_count_and_time_requests_by_route_and_status(server: Server) -> None:
    route = "/v2/models/{model_name}/infer"
    timed = "nepse_http_request_duration_seconds_count"
    ok_before = server.metric("nepse_http_requests_total", route=route, status="200")
    bad_before = server.metric("nepse_http_requests_total", route=route, status="422")
    ok_timed_before = server.metric(timed, route=route, status="200")
    bad_timed_before = server.metric(timed, route=route, status="422")
    for _ in range(3):
        assert server.post(INFER, oip_body([example_row()])).status_code == 200
    assert server.post(INFER, b"{").status_code == 422
    assert server.metric("nepse_http_requests_total", route=route, status="200") == ok_before + 3
    assert server.metric("nepse_http_requests_total", route=route, status="422") == bad_before + 1
    assert server.metric(timed, route=route, status="200") == ok_timed_before + 3
    assert server.metric(timed, route=route, status="422") == bad_timed_before + 1


def test_metrics_count_predictions_by_class_and_describe_the_model(server: Server) -> None:
    def predicted() -> float:
        return server.metric("nepse_predictions_total", track="canary")

    before = predicted()
    assert server.post("/v1/predict", {"instances": [example_row()] * 7}).status_code == 200
    assert predicted() == before + 7
    text = server.client.get("/metrics").text
    assert 'nepse_model_info{backend="trees",track="canary",version="v1"} 1.0' in text
    assert "nepse_model_ready 1.0" in text
    assert "nepse_redis_errors_total 0.0" in text
    assert 'nepse_cache_events_total{event="hit"} 0.0' in text
    assert "process_resident_memory_bytes" in text


def test_unknown_paths_share_one_route_label(server: Server) -> None:
    for i in range(5):
        server.client.get(f"/random/{i}")
    text = server.client.get("/metrics").text
    assert 'route="unmatched"' in text
    assert "/random/" not in text


def test_one_json_log_line_per_request_without_feature_values(server: Server) -> None:
    rid = "log-check-1"
    row = example_row()
    row["rsi_14"] = 12.345678
    assert server.post("/v1/predict", {"features": row}, headers={"x-request-id": rid}).is_success
    lines = [line for line in server.log_lines() if line.get("request_id") == rid]
    assert len(lines) == 1
    [line] = lines
    assert line["msg"] == "request"
    assert line["status"] == 200 and line["route"] == "/v1/predict" and line["rows"] == 1
    assert line["track"] == "canary" and line["model_version"] == "v1"
    assert line["duration_ms"] > 0 and line["ts"].endswith("+00:00")
    assert "12.345678" not in server.log_text()
    assert "features" not in line


def test_rejected_requests_are_logged_with_the_reason(server: Server) -> None:
    server.post("/v1/predict", {"features": {"x": 1}}, headers={"x-request-id": "bad-1"})
    [line] = [line for line in server.log_lines() if line.get("request_id") == "bad-1"]
    assert line["status"] == 422
    assert line["error"].startswith("features.x: unknown feature")


def test_feature_values_are_logged_only_when_asked(start_server, trained_model) -> None:
    server = start_server(trained_model, log_features="true")
    row = example_row()
    row["rsi_14"] = 12.345678
    server.post("/v1/predict", {"features": row}, headers={"x-request-id": "feat-1"})
    [line] = [line for line in server.log_lines() if line.get("request_id") == "feat-1"]
    assert abs(line["features"][0][6] - 12.345678) < 1e-4


def test_access_log_can_be_turned_off(start_server, trained_model) -> None:
    server = start_server(trained_model, access_log="false")
    server.post("/v1/predict", {"features": example_row()}, headers={"x-request-id": "quiet"})
    assert "quiet" not in server.log_text()


def test_a_stalled_stdout_never_blocks_requests() -> None:
    """Nobody reads the pipe: the writer thread blocks, requests do not, memory stays bounded."""
    import asyncio
    import os
    import time

    from nepse_predictor.logging_setup import AccessLog

    read_end, write_end = os.pipe()
    log = AccessLog(True, fd=write_end)
    log.MAX_PENDING = 256 * 1024

    async def many_requests() -> float:
        slowest = 0.0
        for i in range(20_000):
            started = time.perf_counter()
            log.write({"msg": "request", "request_id": f"r{i}", "pad": "x" * 100})
            slowest = max(slowest, time.perf_counter() - started)
            if i % 500 == 0:
                await asyncio.sleep(0)
        return slowest

    slowest = asyncio.run(many_requests())
    assert slowest < 0.05
    assert log.dropped > 0
    os.set_blocking(read_end, False)
    received = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            chunk = os.read(read_end, 1 << 20)
        except BlockingIOError:
            if log._pending == 0:
                break
            time.sleep(0.01)
            continue
        received += chunk
    lines = received.splitlines()
    assert lines and all(line.startswith(b'{"ts":') and line.endswith(b"}") for line in lines)
    os.close(read_end)
    os.close(write_end)


def test_a_new_server_counts_its_prediction_answers_from_zero() -> None:
    """Each prediction route's success, failure and not-ready counters exist at 0 before any
    request: a series born with its first request holds that request in its first sample,
    which Prometheus's increase() never counts (a new canary's first errors would be lost)."""
    from nepse_predictor.app import create_app
    from nepse_predictor.config import Settings
    from nepse_predictor.paths import PREDICTION_ROUTES

    text = create_app(Settings()).state.metrics.render().decode()
    for route in PREDICTION_ROUTES:
        for status in ("200", "500", "503"):
            sample = f'nepse_http_requests_total{{method="POST",route="{route}",status="{status}"}}'
            assert f"{sample} 0.0" in text
            # A gate's p99 (a rate() over its window) needs the histogram there before too.
            count = (
                f'nepse_http_request_duration_seconds_count{{route="{route}",status="{status}"}}'
            )
            assert f"{count} 0.0" in text
