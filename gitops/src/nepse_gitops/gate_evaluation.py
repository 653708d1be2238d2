"""The gate's checks: the candidate track's metrics against the thresholds and the stable track.

Checks (each one only when its threshold is set):

- error ratio: 5xx answers / all answers on prediction routes, the candidate's alone
  (``errorRatio.max``) and above the stable track's (``errorRatio.maxIncrease``)
- p99 latency from the ``nepse_http_request_duration_seconds`` histogram, computed like
  PromQL's histogram_quantile (``p99Seconds.max``, and ``p99Seconds.maxRatio`` against stable,
  where both are counted as at least ``p99Seconds.ratioFloor``, default 50 ms)
- shadow agreement: agree / (agree + disagree) in ``nepse_shadow_comparisons_total`` reported
  by the candidate (``release.shadow.minAgreement``, the release plan's threshold)

A candidate that has served fewer than ``minRequests`` requests is inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import Printer
from .gate_config import GateConfig
from .gate_metrics import TrackMetrics


@dataclass
class Check:
    name: str
    value: float | None
    limit: float
    passed: bool
    detail: str


@dataclass
class GateResult:
    env: str
    stable: TrackMetrics
    candidate: TrackMetrics
    checks: list[Check]
    inconclusive: str | None = None

    @property
    def passed(self) -> bool:
        return self.inconclusive is None and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def evaluate(env: str, cfg: GateConfig, stable: TrackMetrics, cand: TrackMetrics) -> GateResult:
    result = GateResult(env, stable, cand, [])
    if cand.requests < cfg.min_requests:
        result.inconclusive = (
            f"the candidate ({cand.track}) answered {cand.requests:.0f} requests on prediction "
            f"routes; the gate needs at least {cfg.min_requests}"
        )
        return result
    checks = result.checks
    ratio = cand.error_ratio or 0.0
    if cfg.max_error_ratio is not None:
        checks.append(
            Check(
                "error ratio",
                ratio,
                cfg.max_error_ratio,
                ratio <= cfg.max_error_ratio,
                f"{cand.errors:.0f} of {cand.requests:.0f} answers were errors",
            )
        )
    if cfg.max_error_ratio_increase is not None:
        base = stable.error_ratio or 0.0
        checks.append(
            Check(
                "error ratio increase",
                ratio - base,
                cfg.max_error_ratio_increase,
                ratio - base <= cfg.max_error_ratio_increase,
                f"candidate {ratio:.4f} vs stable {base:.4f}",
            )
        )
    p99 = cand.p99
    if cfg.max_p99_seconds is not None:
        if p99 is None:
            checks.append(
                Check(
                    "p99 latency",
                    None,
                    cfg.max_p99_seconds,
                    False,
                    "no latency histogram for the candidate",
                )
            )
        else:
            checks.append(
                Check(
                    "p99 latency",
                    p99,
                    cfg.max_p99_seconds,
                    p99 <= cfg.max_p99_seconds,
                    f"{p99 * 1000:.1f} ms",
                )
            )
    if cfg.max_p99_ratio is not None and p99 is not None:
        stable_p99 = stable.p99
        if stable_p99 is not None:
            # Below the floor, latencies are noise (a few ms either way): compare from there.
            floor = cfg.p99_ratio_floor
            ratio = max(p99, floor) / max(stable_p99, floor)
            checks.append(
                Check(
                    "p99 ratio",
                    ratio,
                    cfg.max_p99_ratio,
                    ratio <= cfg.max_p99_ratio,
                    f"candidate {p99 * 1000:.1f} ms vs stable {stable_p99 * 1000:.1f} ms "
                    f"(both counted as at least {floor * 1000:.0f} ms)",
                )
            )
    if cfg.min_shadow_agreement is not None:
        agreement = cand.shadow_agreement
        if agreement is not None:
            checks.append(
                Check(
                    "shadow agreement",
                    agreement,
                    cfg.min_shadow_agreement,
                    agreement >= cfg.min_shadow_agreement,
                    f"{cand.shadow_agree:.0f} agree, {cand.shadow_disagree:.0f} disagree",
                )
            )
        elif cand.track == "shadow":
            result.inconclusive = (
                "the shadow reports no paired comparisons yet (nepse_shadow_comparisons_total)"
            )
    return result


def report(result: GateResult, out: Printer) -> None:
    out(
        f"gate {result.env}: candidate track {result.candidate.track} vs "
        f"stable track {result.stable.track}"
    )
    out(
        f"  requests: candidate {result.candidate.requests:.0f}, "
        f"stable {result.stable.requests:.0f}"
    )
    for check in result.checks:
        mark = "pass" if check.passed else "FAIL"
        value = "n/a" if check.value is None else f"{check.value:.4g}"
        out(f"  [{mark}] {check.name}: {value} (limit {check.limit:g}); {check.detail}")
    if result.inconclusive:
        out(f"  inconclusive: {result.inconclusive}")
