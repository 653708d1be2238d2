"""What a client sends cannot steer the chart's router, and what nginx's mirror costs a client.

Real nginx with the rendered ConfigMap in front of real `nepse-predictor serve` processes:
the canary header value is matched literally (a value that looks like an nginx regular
expression or map parameter is no wildcard), a client's X-Request-Id neither picks the track nor
becomes the stickiness cookie, and a slow shadow delays no request on a keep-alive connection
while still receiving every mirrored copy (measured and printed).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from routerkit import Router

from testkit.net import free_port
from testkit.service import ServiceProcess

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}


def report(capsys: pytest.CaptureFixture, line: str) -> None:
    with capsys.disabled():
        print(f"\n[router] {line}", flush=True)


def tracks_of(router: Router, body: bytes, headers: dict[str, str], count: int) -> Counter[str]:
    with httpx.Client(timeout=30) as client:
        return Counter(
            client.post(
                f"{router.url}/v1/predict", content=body, headers={**JSON, **headers}
            ).headers["x-track"]
            for _ in range(count)
        )


@pytest.mark.parametrize("value", ["~.*", "default", 'say "hi" \\o/'])
def test_canary_header_value_is_matched_literally(
    router: Router, predict_body: bytes, value: str
) -> None:
    router.start(
        {"rollout": {"strategy": "canary", "canary": {"weight": 0, "header": {"value": value}}}}
    )
    assert tracks_of(router, predict_body, {"x-canary": value}, 20) == {"canary": 20}
    assert tracks_of(router, predict_body, {"x-canary": "true"}, 20) == {"stable": 20}
    assert tracks_of(router, predict_body, {"x-canary": value + "x"}, 20) == {"stable": 20}
    assert tracks_of(router, predict_body, {}, 20) == {"stable": 20}


def test_a_client_request_id_does_not_pick_the_track(
    router: Router, predict_body: bytes, capsys: pytest.CaptureFixture
) -> None:
    router.start({"rollout": {"strategy": "canary", "canary": {"weight": 50}}})
    tracks = tracks_of(router, predict_body, {"x-request-id": "always-the-same"}, 200)
    report(capsys, f"200 requests with one X-Request-Id at weight 50: {dict(tracks)}")
    assert set(tracks) == {"stable", "canary"}


def test_a_client_request_id_never_becomes_the_stickiness_cookie(
    router: Router, predict_body: bytes
) -> None:
    router.start(
        {
            "rollout": {
                "strategy": "canary",
                "canary": {"weight": 50, "stickiness": {"mode": "cookie", "name": "nepse_user"}},
            }
        }
    )
    chosen = "chosen-by-the-client"
    with httpx.Client(timeout=30) as client:
        answer = client.post(
            f"{router.url}/v1/predict",
            content=predict_body,
            headers={**JSON, "x-request-id": chosen},
        )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("nepse_user=")
    assert chosen not in cookie
    assert len(cookie.split(";")[0].removeprefix("nepse_user=")) == 32  # nginx's $request_id


class SlowShadow(BaseHTTPRequestHandler):
    """A shadow that answers after DELAY seconds: the slow candidate nginx mirrors to."""

    DELAY = 3.0
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append(self.headers.get("x-request-id", ""))
        time.sleep(self.DELAY)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_shadow() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), SlowShadow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_slow_shadow_delays_no_keepalive_request_and_still_gets_every_copy(
    backends: dict[str, ServiceProcess],
    slow_shadow: str,
    predict_body: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    upstreams = {t: b.address for t, b in backends.items()} | {"shadow": slow_shadow}
    router = Router(tmp_path / "router", upstreams)
    SlowShadow.received.clear()
    ids = [f"mirror-{n}" for n in range(3)]
    try:
        router.start(
            {
                "rollout": {"strategy": "shadow", "shadow": {"percent": 100}},
                "traffic": {"router": {"mirrorTimeout": 10}},
            }
        )
        seconds = []
        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1)) as client:
            for request_id in ids:
                started = time.monotonic()
                answer = client.post(
                    f"{router.url}/v1/predict",
                    content=predict_body,
                    headers={**JSON, "x-request-id": request_id},
                )
                seconds.append(time.monotonic() - started)
                assert answer.status_code == 200
                assert answer.headers["x-track"] == "stable"
        deadline = time.monotonic() + SlowShadow.DELAY + 5
        while len(SlowShadow.received) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        router.stop()
    report(
        capsys,
        f"shadow {SlowShadow.DELAY:.0f} s slow: keep-alive requests took "
        f"{', '.join(f'{s * 1000:.1f}' for s in seconds)} ms; the shadow got "
        f"{len(SlowShadow.received)} of {len(ids)} copies",
    )
    assert all(s < 0.25 for s in seconds), "a slow shadow delayed a keep-alive request"
    assert sorted(SlowShadow.received) == ids
