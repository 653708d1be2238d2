"""testkit/prometheus.py itself: Debian's Prometheus started, queried, retargeted and stopped,
and the ServiceMonitor's relabelings translated the Prometheus Operator's way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testkit import prometheus
from testkit.prometheus import (
    Prometheus,
    PrometheusError,
    ScrapeJob,
    ScrapeTarget,
    relabel_configs,
    sanitize_label_name,
    value,
)


class _Exposition(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"demo_total {self.server.server_port}\n".encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporters() -> Iterator[list[str]]:
    """Two loopback servers exposing `demo_total <their port>`."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Exposition) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"127.0.0.1:{s.server_port}" for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_prometheus_scrapes_queries_and_follows_a_new_configuration(
    exporters: list[str], tmp_path: Path
) -> None:
    first, second = exporters
    with Prometheus(tmp_path / "prometheus") as prom:
        prom.start([ScrapeTarget(first, {"job": "demo", "team": "search"})])
        (target,) = prom.wait_for_targets_up(timeout=20)
        assert target["labels"] == {"instance": first, "job": "demo", "team": "search"}
        result = prom.wait_until("demo_total", lambda r: len(r) == 1, timeout=10)
        assert value(result) == int(first.rsplit(":", 1)[1])

        job = ScrapeJob(
            "relabelled",
            (ScrapeTarget(second, {"__meta_owner": "ranking", "job": "demo"}),),
            relabel_configs=({"source_labels": ["__meta_owner"], "target_label": "team"},),
        )
        prom.retarget(job)
        assert [t["scrapeUrl"] for t in prom.targets()] == [f"http://{second}/metrics"]
        prom.wait_until('demo_total{team="ranking"}', lambda r: len(r) == 1, timeout=10)
        series = prom.series('demo_total{team="ranking"}')
        assert series and all("__meta_owner" not in s for s in series)

        with pytest.raises(PrometheusError, match="parse error"):
            prom.query("demo_total{")
        assert value(prom.query("1 + 1")) == 2
    assert prom.process is not None and prom.process.poll() is not None
    assert prom.log_path.read_text()


def test_a_missing_prometheus_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prometheus, "PROMETHEUS", tmp_path / "no-prometheus")
    with pytest.raises(pytest.fail.Exception, match="run `make tools`"):
        Prometheus(tmp_path / "prometheus")


def test_relabelings_become_relabel_configs_the_operators_way() -> None:
    configs = relabel_configs(
        [
            {"sourceLabels": ["__meta_kubernetes_pod_label_a"], "targetLabel": "a"},
            {"sourceLabels": ["__address__"], "targetLabel": "__tmp_hash", "modulus": 4,
             "action": "HashMod"},
            {"regex": "pod_template_hash", "action": "LabelDrop"},
        ]
    )  # fmt: skip
    assert configs == (
        {"source_labels": ["__meta_kubernetes_pod_label_a"], "target_label": "a"},
        {"source_labels": ["__address__"], "target_label": "__tmp_hash", "modulus": 4,
         "action": "hashmod"},
        {"regex": "pod_template_hash", "action": "labeldrop"},
    )  # fmt: skip
    with pytest.raises(PrometheusError, match="unknown field"):
        relabel_configs([{"sourceLabels": ["a"], "target": "b"}])
    assert sanitize_label_name("nepse-predictor/track") == "nepse_predictor_track"
