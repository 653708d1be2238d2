"""The metrics the gate judges a track by, whichever source they come from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from .gate_config import GateConfig

REQUESTS = "nepse_http_requests_total"
DURATION_BUCKET = "nepse_http_request_duration_seconds_bucket"
SHADOW = "nepse_shadow_comparisons_total"
MODEL_INFO = "nepse_model_info"
READY = "nepse_model_ready"


@dataclass
class TrackMetrics:
    track: str
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    shadow_agree: float = 0.0
    shadow_disagree: float = 0.0
    model_versions: set[str] = field(default_factory=set)
    p99_override: float | None = None

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p99(self) -> float | None:
        if self.p99_override is not None:
            return self.p99_override
        return histogram_quantile(0.99, self.buckets)

    @property
    def shadow_agreement(self) -> float | None:
        paired = self.shadow_agree + self.shadow_disagree
        return self.shadow_agree / paired if paired else None


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's histogram_quantile on cumulative buckets (linear within a bucket)."""
    if not buckets:
        return None
    ordered = sorted(buckets.items())
    total = ordered[-1][1]
    if total <= 0 or not math.isinf(ordered[-1][0]):
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return ordered[-2][0] if len(ordered) > 1 else None
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return None


class MetricsSource(Protocol):
    """Where the metrics of each track come from (gate_metrics_scrape.py,
    gate_metrics_prometheus.py)."""

    # What to check when a track's metrics come from the wrong model.
    hint: str

    def collect(self, cfg: GateConfig, tracks: dict[str, str]) -> dict[str, TrackMetrics]:
        """The metrics of each role (stable, candidate), whose track is ``tracks[role]``."""
        ...
