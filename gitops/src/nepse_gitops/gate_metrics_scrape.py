"""Gate metrics from the service's own /metrics endpoints (``--stable-url`` and
``--candidate-url``, each may be repeated for several pods and is summed), judged since the
processes started or, with ``--window``, over the difference of two scrapes."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .errors import MetricsError
from .gate_config import GateConfig
from .gate_metrics import DURATION_BUCKET, MODEL_INFO, REQUESTS, SHADOW, TrackMetrics
from .prediction_routes import PREDICTION_ROUTES

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_exposition(text: str, source: str) -> Samples:
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + float(sample.value)
    except ValueError as exc:
        raise MetricsError(f"{source}: not Prometheus exposition format: {exc}") from exc
    return samples


def scrape(client: httpx.Client, url: str) -> Samples:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise MetricsError(f"cannot scrape {url}: {exc}") from exc
    if response.status_code != 200:
        raise MetricsError(f"cannot scrape {url}: HTTP {response.status_code}")
    return parse_exposition(response.text, url)


def metrics_from_samples(track: str, samples: Samples, cfg: GateConfig) -> TrackMetrics:
    status_re = re.compile(cfg.error_statuses)
    m = TrackMetrics(track)
    buckets: dict[float, float] = defaultdict(float)
    for (name, labels), value in samples.items():
        lab = dict(labels)
        if name == REQUESTS and lab.get("route") in PREDICTION_ROUTES:
            m.requests += value
            if status_re.fullmatch(lab.get("status", "")):
                m.errors += value
        elif name == DURATION_BUCKET and lab.get("route") in PREDICTION_ROUTES:
            buckets[float(lab["le"])] += value
        elif name == SHADOW:
            if lab.get("result") == "agree":
                m.shadow_agree += value
            elif lab.get("result") == "disagree":
                m.shadow_disagree += value
        elif name == MODEL_INFO and value == 1 and lab.get("version"):
            m.model_versions.add(lab["version"])
    m.buckets = dict(buckets)
    return m


def _subtract(after: Samples, before: Samples) -> Samples:
    result: Samples = {}
    for key, value in after.items():
        if key[0] == MODEL_INFO:
            result[key] = value
        else:
            # A counter that went down means the process restarted: count from zero.
            prior = before.get(key, 0.0)
            result[key] = value - prior if value >= prior else value
    return result


class ScrapeSource:
    """The service's /metrics endpoints, summed per track, optionally over a time window."""

    hint = "check the URLs"

    def __init__(
        self,
        urls: dict[str, Sequence[str]],
        window_seconds: float = 0.0,
        timeout: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.urls = urls
        self.window = window_seconds
        self.timeout = timeout
        self.sleep = sleep

    def _collect_all(self, client: httpx.Client) -> dict[str, Samples]:
        result: dict[str, Samples] = {}
        for role, urls in self.urls.items():
            merged: Samples = {}
            for url in urls:
                for key, value in scrape(client, url).items():
                    merged[key] = merged.get(key, 0.0) + value
            result[role] = merged
        return result

    def collect(self, cfg: GateConfig, tracks: dict[str, str]) -> dict[str, TrackMetrics]:
        with httpx.Client(timeout=self.timeout) as client:
            first = self._collect_all(client)
            if self.window > 0:
                self.sleep(self.window)
                second = self._collect_all(client)
                samples = {role: _subtract(second[role], first[role]) for role in second}
            else:
                samples = first
        return {role: metrics_from_samples(tracks[role], s, cfg) for role, s in samples.items()}
