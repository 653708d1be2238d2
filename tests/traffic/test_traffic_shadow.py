"""Shadow mirroring through the router: the shadow's share, request ids, and a slow shadow."""

from __future__ import annotations

import http.server
import json
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from testkit.realnode import HOST_IP
from testkit.scenario import assert_nothing_failed, traffic_line, under_load

PERCENT = 40
SLOW_SECONDS = 3.0
SHADOW_PODS = ("app.kubernetes.io/component=predictor", "nepse-predictor/track=shadow")


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(SLOW_SECONDS)
        body = b'{"predictions": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _SlowServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """The router gives up on the slow shadow first: its answer meets a closed socket."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture
def slow_shadow() -> Iterator[str]:
    """A shadow upstream on the host that answers every prediction after several seconds."""
    server = _SlowServer((HOST_IP, 0), _SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"{HOST_IP}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _shadow_predictions(r) -> int:
    total = 0
    for pod in r.release.pods(*SHADOW_PODS):
        url = f"http://{pod['status']['podIP']}:8000/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        total += sum(
            int(float(m.group(1)))
            for m in re.finditer(r"^nepse_predictions_total\{[^}]*\} (\S+)$", text, re.M)
        )
    return total


def _shadow_request_ids(r) -> set[str]:
    ids = set()
    for pod in r.release.pods(*SHADOW_PODS):
        logs = r.release.cluster.kubectl(
            "-n", r.release.namespace, "logs", pod["metadata"]["name"], "-c", "predictor"
        ).stdout
        for line in logs.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("path") == "/v1/predict" and record.get("request_id"):
                    ids.add(record["request_id"])
    return ids


def test_shadow_gets_its_share_with_the_client_request_id(traffic_release, report) -> None:
    r = traffic_release
    r.install(
        "--set", "rollout.strategy=shadow",
        "--set", "traffic.provider=router",
        "--set", f"rollout.shadow.percent={PERCENT}",
        *r.slot("stable", "traffic-a", "v1"),
        *r.slot("shadow", "traffic-b", "v2"),
    )  # fmt: skip
    host, port = r.service_address("nepse-predictor")
    with under_load(host, port) as (loop, _):
        pass
    result = loop.result
    time.sleep(1.0)
    mirrored = _shadow_predictions(r)
    share = mirrored / result.requests
    report(traffic_line("shadow-mirror", result, share=share))
    assert_nothing_failed(result)
    assert "shadow" not in result.tracks()
    assert abs(share - PERCENT / 100) <= 0.05, f"{mirrored} of {result.requests} mirrored"
    client_ids = {a.request_id for a in result.answers}
    shadow_ids = _shadow_request_ids(r)
    assert shadow_ids and shadow_ids <= client_ids, "the shadow saw request ids no client sent"


def test_slow_shadow_does_not_slow_clients(traffic_release, report, slow_shadow) -> None:
    r = traffic_release
    base = [
        "--set", "rollout.strategy=shadow",
        "--set", "traffic.provider=router",
        "--set", f"rollout.shadow.percent={PERCENT}",
        *r.slot("stable", "traffic-a", "v1"),
        *r.slot("shadow", "traffic-b", "v2"),
    ]  # fmt: skip
    r.install(*base)
    host, port = r.service_address("nepse-predictor")
    with under_load(host, port) as (loop, _):
        pass
    fast = loop.result
    r.upgrade(*base, "--set", f"traffic.router.upstreams.shadow={slow_shadow}", wait=True)
    with under_load(host, port) as (loop, _):
        pass
    slow = loop.result
    p99_fast, p99_slow = fast.latency_quantile(0.99), slow.latency_quantile(0.99)
    report(
        traffic_line("shadow-slow", slow)
        + f" p99_ms={p99_slow * 1000:.1f} baseline_p99_ms={p99_fast * 1000:.1f}"
    )
    assert_nothing_failed(fast)
    assert_nothing_failed(slow)
    assert p99_slow - p99_fast <= 0.010, (
        f"a shadow answering after {SLOW_SECONDS}s raised the clients' p99 from "
        f"{p99_fast * 1000:.1f} to {p99_slow * 1000:.1f} ms"
    )
