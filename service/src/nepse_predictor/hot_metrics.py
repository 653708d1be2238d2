"""Counters and histograms that every request updates, kept as plain numbers and turned into
Prometheus samples only when /metrics is scraped.

prometheus_client's own take a lock and walk their buckets on every observation, which came
to a fifth of the service's own time per request. These are updated from the event loop
only (every request is counted there), so they need no lock. The exposition is the same as
prometheus_client's: `_total`, `_bucket`/`_count`/`_sum` and `_created` samples.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class FastCounter(Collector):
    """A counter family; `series(*labels)` is a one-item list to add to: `series[0] += n`."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], tuple[list[float], float]] = {}

    def series(self, *labels: str) -> list[float]:
        known = self._series.get(labels)
        if known is None:
            known = self._series[labels] = ([0.0], time.time())
        return known[0]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, (value, created) in self._series.items():
            family.add_metric(labels, value[0], created=created)
        yield family


class FastHistogram(Collector):
    """A histogram family; `observe(series(*labels), value)` counts one observation."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], labelnames: Sequence[str]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(float(bound) for bound in buckets)
        self.labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], tuple[list[float], float]] = {}

    def series(self, *labels: str) -> list[float]:
        """The counts of each bucket (the last one +Inf), then the sum."""
        known = self._series.get(labels)
        if known is None:
            known = self._series[labels] = ([0.0] * (len(self.bounds) + 2), time.time())
        return known[0]

    def observe(self, series: list[float], value: float) -> None:
        series[bisect_left(self.bounds, value)] += 1
        series[-1] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        edges = [*(floatToGoString(bound) for bound in self.bounds), "+Inf"]
        for labels, (counts, created) in self._series.items():
            cumulative, buckets = 0.0, []
            for edge, count in zip(edges, counts, strict=False):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric(labels, buckets, counts[-1])
            named = dict(zip(self.labelnames, labels, strict=True))
            family.samples.append(Sample(f"{self.name}_created", named, created))
        yield family
