"""Gate metrics from a Prometheus HTTP API (``--prometheus URL`` or ``gate.prometheus.url``):
each track selected by ``gate.prometheus.selector`` and its ``trackLabel``, over the window."""

from __future__ import annotations

import math
from typing import Any

import httpx

from .errors import CandidateUnscraped, MetricsError
from .gate_config import GateConfig
from .gate_metrics import DURATION_BUCKET, MODEL_INFO, READY, REQUESTS, SHADOW, TrackMetrics
from .prediction_routes import promql_route_matcher


class PrometheusSource:
    """A Prometheus HTTP API; each track is selected by a label (``track`` by default)."""

    hint = (
        "check gate.prometheus.selector and trackLabel in the policy, and that the chart's "
        "ServiceMonitor is enabled"
    )

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _vector(self, client: httpx.Client, promql: str) -> list[dict[str, Any]]:
        try:
            response = client.get(f"{self.url}/api/v1/query", params={"query": promql})
        except httpx.HTTPError as exc:
            raise MetricsError(f"cannot query Prometheus at {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise MetricsError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} without JSON"
            ) from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise MetricsError(
                f"Prometheus rejected the query {promql!r}: {body.get('error', response.text)}"
            )
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def _query(self, client: httpx.Client, promql: str) -> float | None:
        result = self._vector(client, promql)
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def collect(self, cfg: GateConfig, tracks: dict[str, str]) -> dict[str, TrackMetrics]:
        out = {}
        with httpx.Client(timeout=self.timeout) as client:
            for role, track in tracks.items():
                matchers = [f'{cfg.prometheus_track_label}="{track}"']
                if cfg.prometheus_selector:
                    matchers.insert(0, cfg.prometheus_selector)
                sel = ",".join(matchers)
                routes = f"{sel},{promql_route_matcher()}"
                w = cfg.prometheus_window
                # Every server exposes nepse_model_ready from its start: no such series means
                # that no candidate pod is scraped under this selector, not an idle candidate.
                # (The stable track may have none: a blue-green's previous colour scaled down.)
                if role == "candidate" and not self._query(
                    client, f"count(count_over_time({READY}{{{sel}}}[{w}]))"
                ):
                    raise CandidateUnscraped(
                        f"Prometheus at {self.url} holds no {READY} series matching "
                        f"{{{sel}}} in the last {w}: no pod of the candidate track ({track}) "
                        f"is scraped there; {self.hint}"
                    )
                m = TrackMetrics(track)
                m.model_versions = {
                    series["metric"]["version"]
                    for series in self._vector(
                        client,
                        f"count by (version) (max_over_time({MODEL_INFO}{{{sel}}}[{w}]) == 1)",
                    )
                    if series["metric"].get("version")
                }
                m.requests = (
                    self._query(client, f"sum(increase({REQUESTS}{{{routes}}}[{w}]))") or 0.0
                )
                m.errors = (
                    self._query(
                        client,
                        f'sum(increase({REQUESTS}{{{routes},status=~"{cfg.error_statuses}"}}[{w}]))',
                    )
                    or 0.0
                )
                m.p99_override = self._query(
                    client,
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate({DURATION_BUCKET}{{{routes}}}[{w}])))",
                )
                m.shadow_agree = (
                    self._query(client, f'sum(increase({SHADOW}{{{sel},result="agree"}}[{w}]))')
                    or 0.0
                )
                m.shadow_disagree = (
                    self._query(client, f'sum(increase({SHADOW}{{{sel},result="disagree"}}[{w}]))')
                    or 0.0
                )
                out[role] = m
        return out
