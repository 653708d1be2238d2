"""`nepse-gitops gate`: compare the candidate track with the stable track and act on the result.

Metrics come from the service's own ``/metrics`` endpoints (``--stable-url`` and
``--candidate-url``, each may be repeated for several pods and is summed), or from a
Prometheus HTTP API (``--prometheus URL`` or ``gate.prometheus.url``). Thresholds live in the
``gate:`` section of ``environments/<env>/policy.yaml``.

Checks (each one only when its threshold is set):

- error ratio: 5xx answers / all answers on prediction routes, the candidate's alone
  (``errorRatio.max``) and above the stable track's (``errorRatio.maxIncrease``)
- p99 latency from the ``nepse_http_request_duration_seconds`` histogram, computed like
  PromQL's histogram_quantile (``p99Seconds.max``, and ``p99Seconds.maxRatio`` against stable,
  where both are counted as at least ``p99Seconds.ratioFloor``, default 50 ms)
- shadow agreement: agree / (agree + disagree) in ``nepse_shadow_comparisons_total`` reported
  by the candidate (``release.shadow.minAgreement``, the release plan's threshold)

Before judging, the gate refuses (exit 2) a track whose metrics come from another model than
its slot pins (``nepse_model_info``), and, from Prometheus, a candidate track of which no pod
is scraped under ``gate.prometheus.selector`` and ``trackLabel`` within the window (no
``nepse_model_ready`` series, which every server exposes from its start): a wrong selector is
an error, never a candidate that seems idle.

Exit codes: 0 pass, 1 fail (the release in flight is rolled back with one commit unless
``--no-rollback``), 2 error (metrics unreachable, bad configuration, or the rollback was made
but voiding the candidate's logged predictions failed), 3 inconclusive (the candidate has
served fewer than ``minRequests`` requests).

On a rollback the candidate's model version is voided in the prediction log (see
void_mark.py): run with ``--redis-url``, printed for someone to run without it.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .change import Delivery, Printer
from .durations import parse_duration
from .environments import Environment, load_environment
from .errors import GitopsError
from .gitrepo import GitRepo
from .prediction_routes import PREDICTION_ROUTES, promql_route_matcher
from .release_plan import load_release_plan
from .rollback import flipped_since_promote
from .state import EnvState, Version, env_state
from .values import deep_merge
from .void_mark import DEFAULT_STREAM, VoidRequest, print_void_command, void_predictions

EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_INCONCLUSIVE = 0, 1, 2, 3

REQUESTS = "nepse_http_requests_total"
DURATION_BUCKET = "nepse_http_request_duration_seconds_bucket"
SHADOW = "nepse_shadow_comparisons_total"
MODEL_INFO = "nepse_model_info"
READY = "nepse_model_ready"


class GateConfigError(GitopsError):
    exit_code = EXIT_ERROR


class MetricsError(GitopsError):
    exit_code = EXIT_ERROR


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass
class GateConfig:
    min_requests: int = 100
    error_statuses: str = r"5.."
    max_error_ratio: float | None = None
    max_error_ratio_increase: float | None = None
    max_p99_seconds: float | None = None
    max_p99_ratio: float | None = None
    p99_ratio_floor: float = 0.05
    min_shadow_agreement: float | None = None
    prometheus_url: str | None = None
    prometheus_selector: str = ""
    prometheus_track_label: str = "track"
    prometheus_window: str = "10m"


def _number(section: dict, key: str, where: str, lo: float = 0.0, hi: float | None = None):
    if key not in section or section[key] is None:
        return None
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GateConfigError(f"{where}.{key} must be a number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise GateConfigError(f"{where}.{key} must be {bound}, got {value}")
    return float(value)


GATE_KEYS = ("minRequests", "errorStatuses", "errorRatio", "p99Seconds", "prometheus")


def parse_gate_section(gate: object, where: str) -> GateConfig:
    """A `gate:` mapping; ``where`` names it in errors (``<policy file>: gate``)."""
    if not isinstance(gate, dict):
        raise GateConfigError(f"{where}: expected a mapping with the thresholds, got {gate!r}")
    if "shadowAgreement" in gate:
        raise GateConfigError(
            f"{where}.shadowAgreement: the shadow's agreement threshold is "
            "release.shadow.minAgreement (the release plan), not a gate key"
        )
    unknown = sorted(set(gate) - set(GATE_KEYS))
    if unknown:
        raise GateConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(GATE_KEYS))})"
        )
    cfg = GateConfig()
    min_requests = _number(gate, "minRequests", where, lo=1)
    if min_requests is not None:
        cfg.min_requests = int(min_requests)
    if "errorStatuses" in gate:
        cfg.error_statuses = str(gate["errorStatuses"])
        try:
            re.compile(cfg.error_statuses)
        except re.error as exc:
            raise GateConfigError(f"{where}.errorStatuses is not a regex: {exc}") from exc
    err = _mapping(gate, "errorRatio", where)
    cfg.max_error_ratio = _number(err, "max", f"{where}.errorRatio", hi=1)
    cfg.max_error_ratio_increase = _number(err, "maxIncrease", f"{where}.errorRatio", hi=1)
    p99 = _mapping(gate, "p99Seconds", where)
    cfg.max_p99_seconds = _number(p99, "max", f"{where}.p99Seconds")
    cfg.max_p99_ratio = _number(p99, "maxRatio", f"{where}.p99Seconds")
    floor = _number(p99, "ratioFloor", f"{where}.p99Seconds")
    if floor is not None:
        cfg.p99_ratio_floor = floor
    prom = _mapping(gate, "prometheus", where)
    cfg.prometheus_url = prom.get("url")
    cfg.prometheus_selector = str(prom.get("selector") or "")
    cfg.prometheus_track_label = str(prom.get("trackLabel") or "track")
    window = prom.get("window") or "10m"
    parse_duration(window, f"{where}.prometheus.window")
    cfg.prometheus_window = str(window)
    return cfg


def _mapping(section: dict, key: str, where: str) -> dict:
    value = section.get(key) or {}
    if not isinstance(value, dict):
        raise GateConfigError(f"{where}.{key} must be a mapping, got {value!r}")
    return value


def load_gate_config(
    env: Environment, overrides: dict | None = None, where: str = ""
) -> GateConfig:
    """The environment's `gate:` section, with ``overrides`` (a plan step's `gate:`) over it;
    the shadow's agreement threshold comes from the release plan."""
    policy = env.rel(env.policy_path)
    if not env.policy_path.is_file():
        raise GateConfigError(
            f"{policy} is missing: the gate's thresholds for {env.name} live there"
        )
    gate = env.policy().get("gate")
    if not isinstance(gate, dict):
        raise GateConfigError(f"{policy}: expected a `gate:` mapping with the thresholds")
    if overrides:
        parse_gate_section(overrides, where or f"{policy}: overrides")
        gate = deep_merge(gate, overrides)
    cfg = parse_gate_section(gate, where or f"{policy}: gate")
    cfg.min_shadow_agreement = load_release_plan(env).shadow.min_agreement
    return cfg


# --------------------------------------------------------------------------------------------
# Metrics of one track
# --------------------------------------------------------------------------------------------


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


class PrometheusSource:
    """A Prometheus HTTP API; each track is selected by a label (``track`` by default)."""

    hint = (
        "check gate.prometheus.selector and trackLabel in the policy, and that the chart's "
        "ServiceMonitor is enabled"
    )

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _vector(self, client: httpx.Client, promql: str) -> list[dict]:
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
        return body["data"]["result"]

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
                    raise MetricsError(
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


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


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
        base = stable.p99
        if base is not None:
            # Below the floor, latencies are noise (a few ms either way): compare from there.
            floor = cfg.p99_ratio_floor
            ratio = max(p99, floor) / max(base, floor)
            checks.append(
                Check(
                    "p99 ratio",
                    ratio,
                    cfg.max_p99_ratio,
                    ratio <= cfg.max_p99_ratio,
                    f"candidate {p99 * 1000:.1f} ms vs stable {base * 1000:.1f} ms "
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


def tracks_for(root: Path, state: EnvState) -> dict[str, str]:
    """Which track is judged (candidate) against which (stable).

    In blueGreen the candidate is the idle colour before the flip and the active colour after
    it (then judged against the previous version, still running on the idle colour).
    """
    candidate = state.candidate()
    if candidate is None:
        raise GateConfigError(
            f"nothing to gate in {state.name}: no release is in flight "
            f"(strategy {state.strategy}, slots in use: "
            f"{', '.join(f'{k}={v}' for k, v in state.slots_in_use().items()) or 'none'})"
        )
    stable_slot, _ = state.served()
    if state.strategy == "blueGreen" and flipped_since_promote(GitRepo(root), state.name):
        return {"stable": state.idle_colour, "candidate": state.active_colour}
    return {"stable": stable_slot, "candidate": candidate[0]}


@dataclass
class Judgement:
    """What the gate found for the release in flight of one environment."""

    env: Environment
    state: EnvState
    tracks: dict[str, str]
    result: GateResult

    @property
    def candidate_version(self) -> Version:
        return self.state.slots[self.tracks["candidate"]]

    def to_json(self) -> dict:
        result = self.result
        return {
            "candidate": result.candidate.track,
            "stable": result.stable.track,
            "candidateRequests": result.candidate.requests,
            "stableRequests": result.stable.requests,
            "inconclusive": result.inconclusive,
            "passed": result.passed,
            "checks": [
                {
                    "name": c.name,
                    "value": c.value,
                    "limit": c.limit,
                    "passed": c.passed,
                    "detail": c.detail,
                }
                for c in result.checks
            ],
        }

    def failure_reason(self) -> str:
        checks = "; ".join(
            f"{c.name} {'n/a' if c.value is None else f'{c.value:.4g}'} beyond {c.limit:g}"
            for c in self.result.failures
        )
        return f"gate failed for {self.candidate_version} ({self.tracks['candidate']}): {checks}"


def metrics_source(cfg: GateConfig, env: Environment) -> PrometheusSource:
    if not cfg.prometheus_url:
        raise GateConfigError(
            "no metrics source: pass --stable-url and --candidate-url (the service's "
            "/metrics), --prometheus URL, or set gate.prometheus.url in "
            f"{env.rel(env.policy_path)}"
        )
    return PrometheusSource(cfg.prometheus_url)


def judge(
    root: Path,
    env: Environment,
    cfg: GateConfig,
    source: ScrapeSource | PrometheusSource | None,
) -> Judgement:
    state = env_state(env)
    tracks = tracks_for(root, state)
    source = source or metrics_source(cfg, env)
    metrics = source.collect(cfg, tracks)
    _check_versions(state, tracks, metrics, source.hint)
    result = evaluate(env.name, cfg, metrics["stable"], metrics["candidate"])
    return Judgement(env, state, tracks, result)


def roll_back_failed(
    root: Path,
    judgement: Judgement,
    delivery: Delivery,
    out: Printer,
    helm: str | None = None,
    void_log: tuple[str | None, str] = (None, DEFAULT_STREAM),
) -> str:
    """Commit the rollback of the whole release in flight, then void the candidate's logged
    predictions (or print how); returns the rollback commit."""
    from .rollback import rollback

    env, reason = judgement.env, judgement.failure_reason()
    try:
        sha = rollback(
            root,
            env.name,
            release=True,
            reason=reason,
            delivery=delivery,
            dry_run=False,
            out=out,
            helm=helm,
        )
    except GitopsError as exc:
        raise GitopsError(
            f"the gate failed, but the rollback commit could not be made: {exc}"
        ) from exc
    assert sha is not None
    void = _void_request(judgement, void_log)
    if void is not None:
        try:
            void_predictions(void, out)
        except GitopsError as exc:
            raise GitopsError(f"the gate failed and {env.name} is rolled back, but {exc}") from exc
    return sha


def _void_request(judgement: Judgement, void_log: tuple[str | None, str]) -> VoidRequest | None:
    model_version = judgement.candidate_version.model_version
    if not model_version:
        return None
    reason = f"nepse-gitops gate {judgement.env.name}: {judgement.failure_reason()}"
    return VoidRequest(model_version, reason, *void_log)


def run_gate(
    root: Path,
    env_name: str,
    source: ScrapeSource | PrometheusSource | None,
    rollback_on_fail: bool,
    delivery: Delivery,
    out: Printer,
    helm: str | None = None,
    void_log: tuple[str | None, str] = (None, DEFAULT_STREAM),
) -> GateRun:
    """`void_log`: the prediction log's Redis URL (None: print the mark) and stream."""
    env = load_environment(root, env_name)
    judgement = judge(root, env, load_gate_config(env), source)
    result = judgement.result
    report(result, out)
    if result.inconclusive:
        return GateRun(EXIT_INCONCLUSIVE, judgement)
    if result.passed:
        out(f"gate passed for {env.name}")
        return GateRun(EXIT_PASS, judgement)
    out(judgement.failure_reason())
    if not rollback_on_fail:
        void = _void_request(judgement, void_log)
        if void is not None:
            out("if it is rolled back:")
            print_void_command(void, out)
        return GateRun(EXIT_FAIL, judgement)
    sha = roll_back_failed(root, judgement, delivery, out, helm, void_log)
    return GateRun(EXIT_FAIL, judgement, sha)


@dataclass
class GateRun:
    exit_code: int
    judgement: Judgement
    rollback: str | None = None

    def to_json(self) -> dict:
        verdict = {EXIT_PASS: "pass", EXIT_FAIL: "fail", EXIT_INCONCLUSIVE: "inconclusive"}
        return {
            "env": self.judgement.env.name,
            "result": verdict[self.exit_code],
            "reason": (self.judgement.failure_reason() if self.exit_code == EXIT_FAIL else None),
            "rollback": self.rollback,
            **self.judgement.to_json(),
        }


def _check_versions(
    state: EnvState, tracks: dict[str, str], metrics: dict[str, TrackMetrics], hint: str
) -> None:
    """Refuse to judge when no endpoint of a track serves the model its slot pins."""
    for role, slot in tracks.items():
        seen = metrics[role].model_versions
        expected = state.slots[slot].model_version
        if seen and expected and expected not in seen:
            raise MetricsError(
                f"the {role} metrics come from model {', '.join(sorted(seen))}, but "
                f"{state.name}'s {slot} slot pins {expected}; {hint}"
            )


def parse_window(text: str) -> float:
    try:
        return parse_duration(text, "--window")
    except GitopsError as exc:
        raise GateConfigError(str(exc)) from exc
