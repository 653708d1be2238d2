"""Prometheus metrics of one server (its own registry, so tests can build many apps).

nepse_http_requests_total{route,method,status}     requests answered; route is one of
                                                   paths.ROUTE_TEMPLATES or "unmatched",
                                                   method one of METHODS or "other"; on the
                                                   prediction routes, POST with ZERO_STATUSES
                                                   is there at 0 from the start
nepse_http_refused_total{reason}                   connections closed before a request was
                                                   read: header_too_large, too_many_headers,
                                                   header_timeout, too_many_connections,
                                                   too_many_pipelined
nepse_http_request_duration_seconds{route,status}  time to answer (histogram)
nepse_predictions_total{track,label}               predicted rows by class (label up/down)
nepse_prediction_rows{route}                       rows per prediction request (histogram)
nepse_model_info{version,track,backend}            1 for the loaded model
nepse_model_ready                                  1 when a verified model is loaded
nepse_model_newest                                 1 when the loaded version is the newest of
                                                   its models root (or was named directly), 0
                                                   when newer ones failed and were passed over
nepse_cache_events_total{event}                    hit, miss, store, bypass (Redis skipped),
                                                   log_written, log_dropped
nepse_redis_errors_total                           Redis calls that failed or timed out
nepse_shadow_comparisons_total{baseline,result}    this track's predictions paired with the
                                                   baseline track's: agree, disagree, unpaired
nepse_shadow_abs_diff{baseline}                    abs(p - p_baseline) (histogram)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
ROW_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 100000)
DIFF_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Why a connection was closed before a request was read (http_protocol).
REFUSED_REASONS = (
    "header_too_large",
    "too_many_headers",
    "header_timeout",
    "too_many_connections",
    "too_many_pipelined",
)
CACHE_EVENTS = ("hit", "miss", "store", "bypass", "log_written", "log_dropped")
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# Statuses whose request counters start at 0 on the prediction routes (`start_at_zero`): a
# success, a model failure and a prediction asked of a server without a model.
ZERO_STATUSES = (200, 500, 503)


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        ProcessCollector(registry=r)

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(name, documentation, labels, registry=r)

        def gauge(name: str, documentation: str, *labels: str) -> Gauge:
            return Gauge(name, documentation, labels, registry=r)

        def histogram(
            name: str, documentation: str, buckets: Sequence[float], *labels: str
        ) -> Histogram:
            return Histogram(name, documentation, labels, buckets=buckets, registry=r)

        self.requests = counter(
            "nepse_http_requests", "HTTP requests answered.", "route", "method", "status"
        )
        self.duration = histogram(
            "nepse_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            LATENCY_BUCKETS,
            "route",
            "status",
        )
        self.refused = counter(
            "nepse_http_refused",
            "Connections closed before a request was read, by reason.",
            "reason",
        )
        self._refused = {reason: self.refused.labels(reason) for reason in REFUSED_REASONS}
        self.predictions = counter(
            "nepse_predictions", "Predicted rows by class.", "track", "label"
        )
        self.rows = histogram(
            "nepse_prediction_rows", "Rows per prediction request.", ROW_BUCKETS, "route"
        )
        self.model_info = gauge(
            "nepse_model_info",
            "The model version this server answers with.",
            "version",
            "track",
            "backend",
        )
        self.model_ready = gauge("nepse_model_ready", "1 when a verified model is loaded.")
        self.model_newest = gauge(
            "nepse_model_newest",
            "1 when the loaded version is the newest one; 0 when newer ones were passed over.",
        )
        self.cache_events = counter(
            "nepse_cache_events", "Prediction cache and prediction log events.", "event"
        )
        self.redis_errors = counter("nepse_redis_errors", "Redis calls that failed or timed out.")
        self.shadow_comparisons = counter(
            "nepse_shadow_comparisons",
            "Predictions of this track paired with the baseline track's for the same request.",
            "baseline",
            "result",
        )
        self.shadow_abs_diff = histogram(
            "nepse_shadow_abs_diff",
            "abs(p - p_baseline) of paired predictions.",
            DIFF_BUCKETS,
            "baseline",
        )
        self.redis_errors.inc(0)
        # Children cached by label values: `.labels()` costs more than the increment itself.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._prediction_children: dict[str, tuple[Counter, Counter]] = {}
        self._row_children: dict[str, Histogram] = {}
        # Every cache event's series exists from the start (at 0).
        self.cache_event = {event: self.cache_events.labels(event) for event in CACHE_EVENTS}

    def start_at_zero(self, routes: Iterable[str]) -> None:
        """Expose the request counters and latency histograms of ``routes`` answering POST
        with ``ZERO_STATUSES`` at 0 from the start. A series that appears with its first
        request holds that request in its first sample, which Prometheus's increase() and
        rate() never count: a release gate or an alert would miss a new track's first answers,
        its first errors, and its latency (a p99 with no value)."""
        for route in routes:
            for status in ZERO_STATUSES:
                self.requests.labels(route, "POST", str(status))
                self.duration.labels(route, str(status))

    def count_refused(self, reason: str) -> None:
        self._refused[reason].inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """`route` must come from a closed set (route templates, "unmatched")."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method_label(method), str(status)),
                self.duration.labels(route, str(status)),
            )
            if len(self._request_children) < 1000:
                self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_predictions(self, track: str, route: str, ups: int, downs: int) -> None:
        children = self._prediction_children.get(track)
        if children is None:
            children = (
                self.predictions.labels(track, "up"),
                self.predictions.labels(track, "down"),
            )
            self._prediction_children[track] = children
        if ups:
            children[0].inc(ups)
        if downs:
            children[1].inc(downs)
        rows = self._row_children.get(route)
        if rows is None:
            rows = self._row_children[route] = self.rows.labels(route)
        rows.observe(ups + downs)

    def set_model(self, version: str | None, track: str, backend: str, newest: bool = True) -> None:
        self.model_info.clear()
        if version is None:
            self.model_ready.set(0)
            self.model_newest.set(0)
            return
        self.model_info.labels(version, track, backend).set(1)
        self.model_ready.set(1)
        self.model_newest.set(1 if newest else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
