"""The chart's monitoring checked by Prometheus's own tools, and who may scrape.

Every PrometheusRule the chart renders (each environment that enables one, and the chart's
defaults with the rules on under every strategy) passes `promtool check rules`. Then
`promtool test rules` proves what the alerts do, on input series that are the series the
service really emits, labelled as the chart's ServiceMonitor makes the Prometheus Operator
label them: a `nepse-predictor serve` on the one-row-only model (200 for single rows, 500 for
batches, 404 for unmatched paths, 200 on /ready) and one without a model (503 on /ready and
on predictions) are scraped by Debian's Prometheus through the ServiceMonitor's scrape job
(testkit/prometheus.py) as the stable and the canary track of prod in a canary release. The
label sets Prometheus stores become promtool `input_series`; each scenario only chooses how
fast each series grows. The expected annotations are computed as Prometheus's templates
would print them (humanizePercentage, humanizeDuration).

Where a NetworkPolicy guards an environment's predictors and its ServiceMonitor is on, the
namespace of the Prometheus its gate queries is admitted.
"""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chartkit import REPO_ROOT, render

from nepse_gitops.environments import Environment
from nepse_gitops.gate import histogram_quantile
from nepse_predictor.paths import PREDICTION_ROUTES
from testkit.model_variants import one_row_only_model
from testkit.prometheus import Prometheus, service_monitor_job, value
from testkit.service import ServiceProcess

PROMTOOL = Path("/usr/bin/promtool")
REQUESTS = "nepse_http_requests_total"
BUCKETS = "nepse_http_request_duration_seconds_bucket"
ENVIRONMENTS = sorted(p.parent.name for p in (REPO_ROOT / "environments").glob("*/values.yaml"))
SLOTS = {
    track: {"imageTag": "0.1.0", "modelVersion": "2026.11.01-1a2b3c4"}
    for track in ("stable", "canary", "shadow", "blue", "green")
}
DEFAULTS = {
    strategy: {
        "rollout": {"strategy": strategy},
        "slots": SLOTS,
        "metrics": {"prometheusRule": {"enabled": True}},
        **({"traffic": {"provider": "router"}} if strategy == "shadow" else {}),
    }
    for strategy in ("rolling", "canary", "blueGreen", "shadow")
}
# prod during a canary release: both tracks are scraped and alerted on.
PROD_CANARY = {
    "rollout": {"strategy": "canary"},
    "slots": {"canary": {**SLOTS["canary"], "modelSha256": "c2e4a6b8" * 8}},
}
MINUTES = 20  # each input series runs for this long, one sample a minute


def _promtool() -> Path:
    if not PROMTOOL.exists():
        pytest.fail(
            f"{PROMTOOL} is missing: run `make tools` (it installs Debian's prometheus package)",
            pytrace=False,
        )
    return PROMTOOL


def _rules(docs: list[dict]) -> dict[str, Any] | None:
    """The `spec` of the one PrometheusRule among ``docs``: a Prometheus rules file."""
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert len(rules) <= 1
    return rules[0]["spec"] if rules else None


def _render(values: dict[str, Any], files: list[Path], tmp: Path, namespace: str) -> list[dict]:
    extra = tmp / "extra-values.yaml"
    extra.write_text(yaml.safe_dump(values))
    return render("helm4", [*files, extra], namespace=namespace)


def _env_files(name: str) -> list[Path]:
    return Environment(REPO_ROOT, name).value_files()


def _promtool_run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_promtool()), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60
    )


# --- promtool check rules ---------------------------------------------------------------------


def _rendered_rule_files(tmp: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for env in ENVIRONMENTS:
        spec = _rules(_render({}, _env_files(env), tmp, f"nepse-{env}"))
        if spec is not None:
            out[f"env-{env}"] = spec
    spec = _rules(_render(PROD_CANARY, _env_files("prod"), tmp, "nepse-prod"))
    assert spec is not None
    out["env-prod-canary"] = spec
    for strategy, values in DEFAULTS.items():
        spec = _rules(_render(values, [], tmp, "nepse-test"))
        assert spec is not None, strategy
        out[f"defaults-{strategy}"] = spec
    return out


def test_promtool_accepts_every_prometheus_rule_the_chart_renders(tmp_path: Path) -> None:
    files = _rendered_rule_files(tmp_path)
    assert "env-prod" in files, "no environment enables the PrometheusRule any more"
    for name, spec in files.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        result = _promtool_run("check", "rules", path, cwd=tmp_path)
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
        tracks = {r["labels"]["track"] for g in spec["groups"] for r in g["rules"]}
        assert len(spec["groups"][0]["rules"]) == 2 * len(tracks), name


def test_promtool_check_rules_fails_on_a_broken_expression(tmp_path: Path) -> None:
    spec = _rules(_render({}, _env_files("prod"), tmp_path, "nepse-prod"))
    assert spec is not None
    broken = copy.deepcopy(spec)
    broken["groups"][0]["rules"][0]["expr"] = broken["groups"][0]["rules"][0]["expr"].replace(
        "sum(", "sum((", 1
    )
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = _promtool_run("check", "rules", path, cwd=tmp_path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


# --- who may scrape ----------------------------------------------------------------------


def test_every_environment_lets_its_prometheus_scrape_the_predictors(tmp_path: Path) -> None:
    """Where a NetworkPolicy guards the predictors and a ServiceMonitor scrapes them, the
    namespace of the Prometheus the gate queries (gate.prometheus.url) is admitted."""
    checked = []
    for env in ENVIRONMENTS:
        docs = _render({}, _env_files(env), tmp_path, f"nepse-{env}")
        kinds = {d["kind"] for d in docs}
        if not {"ServiceMonitor", "NetworkPolicy"} <= kinds:
            continue
        policy = Environment(REPO_ROOT, env).policy()
        url = policy["gate"]["prometheus"]["url"]
        match = re.match(r"https?://[^./]+\.([^./]+)\.svc[.:/]", url)
        assert match, f"{env}: cannot read the namespace of {url}"
        (predictors,) = [
            d
            for d in docs
            if d["kind"] == "NetworkPolicy"
            and d["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
            == "predictor"
        ]
        peers = predictors["spec"]["ingress"][0]["from"]
        admitted = {
            p["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name")
            for p in peers
            if "namespaceSelector" in p and "podSelector" not in p
        }
        assert match[1] in admitted, f"{env}: {url} is not admitted by {peers}"
        checked.append(env)
    assert "prod" in checked


# --- the service's real series, as Prometheus labels them ---------------------------------


@pytest.fixture(scope="module")
def real_series(
    trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[dict[str, str]]]:
    """Label sets of the request counters and latency buckets Prometheus stored."""
    work = tmp_path_factory.mktemp("rules-series")
    broken = one_row_only_model(trained_model, work / "broken" / trained_model.name)
    logs = work / "logs"
    logs.mkdir()
    servers = [
        ServiceProcess("broken", broken, "canary", logs),
        ServiceProcess("no-model", work / "no-model" / "v1", "canary", logs),
    ]
    pods = [s.address for s in servers]
    job = service_monitor_job(
        {"stable": pods, "canary": pods},
        namespace="nepse-prod",
        values_files=_env_files("prod"),
        values=PROD_CANARY,
    )
    prom = Prometheus(work / "prometheus")
    try:
        prom.start(job)
        for server in servers:
            server.wait()
        prom.wait_for_targets_up(timeout=30)
        features = json.loads((trained_model / "metadata.json").read_text())["features"]
        row = dict.fromkeys(features, 0.1)
        statuses = set()
        with httpx.Client(timeout=10) as client:
            for server in servers:
                for body in ({"features": row}, {"instances": [row, row]}):
                    r = client.post(f"{server.url}/v1/predict", json=body)
                    statuses.add(r.status_code)
                statuses.add(client.get(f"{server.url}/ready").status_code)
                statuses.add(client.get(f"{server.url}/no/such/page").status_code)
        assert statuses == {200, 404, 500, 503}
        # Three of those requests per server, each server scraped as both tracks.
        sent = f'{REQUESTS}{{namespace="nepse-prod",route=~"/v1/predict|unmatched"}}'
        prom.wait_until(f"sum({sent})", lambda r: value(r) == 3 * 2 * 2, timeout=15)
        yield prom.series(REQUESTS) + prom.series(BUCKETS)
    finally:
        prom.stop()
        for server in servers:
            server.stop()


def test_the_real_series_carry_the_labels_the_rules_select_on(real_series) -> None:
    requests = [s for s in real_series if s["__name__"] == REQUESTS]
    by_track = {(s["track"], s["job"], s["namespace"]) for s in requests}
    assert by_track == {
        ("stable", "nepse-predictor-stable", "nepse-prod"),
        ("canary", "nepse-predictor-canary", "nepse-prod"),
    }
    seen = {(s["route"], s["status"]) for s in requests}
    assert {("/v1/predict", "500"), ("/ready", "503"), ("unmatched", "404")} <= seen
    assert ("/v1/predict", "503") in seen  # the server without a model


# --- promtool test rules ------------------------------------------------------------------


def _go_g4(v: float) -> str:
    """Go's %.4g (the same as Python's for finite numbers)."""
    return f"{v:.4g}"


def humanize_percentage(v: float) -> str:
    return f"{_go_g4(v * 100)}%"


def humanize_duration(v: float) -> str:
    """Prometheus's humanizeDuration (template/template.go)."""
    if math.isnan(v) or math.isinf(v):
        return _go_g4(v)
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_go_g4(v)}s"
    if v == 0:
        return "0s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_go_g4(v)}{prefix}s"


TEMPLATES = {"humanizePercentage": humanize_percentage, "humanizeDuration": humanize_duration}


def _annotations(rule: dict[str, Any], value_: float) -> dict[str, str]:
    """The rule's annotations as Prometheus prints them for ``value_``."""

    def fill(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            return TEMPLATES[match.group(1)](value_)

        filled = re.sub(r"\{\{ \$value \| (\w+) \}\}", one, text)
        assert "{{" not in filled, f"a template this test does not know: {text}"
        return filled

    return {k: fill(v) for k, v in rule.get("annotations", {}).items()}


def _duration(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smh])", text)
    assert match, text
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def _selector(labels: dict[str, str]) -> str:
    def quote(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    inner = ",".join(f"{k}={quote(v)}" for k, v in sorted(labels.items()) if k != "__name__")
    return f"{labels['__name__']}{{{inner}}}"


Growth = Callable[[dict[str, str]], float]


def _input_series(series: list[dict[str, str]], growth: Growth) -> list[dict[str, str]]:
    """Every real series, each growing by ``growth(labels)`` a minute from 0."""
    return [
        {"series": _selector(labels), "values": f"0+{growth(labels):g}x{MINUTES}"}
        for labels in series
    ]


def _error_ratio(series: list[dict[str, str]], growth: Growth, track: str) -> float:
    """5xx / all answers of ``track``'s prediction routes: what the alert computes."""
    mine = [
        s
        for s in series
        if s["__name__"] == REQUESTS and s["track"] == track and s["route"] in PREDICTION_ROUTES
    ]
    errors = sum(growth(s) for s in mine if s["status"].startswith("5"))
    return errors / sum(growth(s) for s in mine)


def _p99(series: list[dict[str, str]], growth: Growth, track: str) -> float:
    buckets: dict[float, float] = {}
    for s in series:
        if s["__name__"] == BUCKETS and s["track"] == track and s["route"] in PREDICTION_ROUTES:
            le = float(s["le"])
            buckets[le] = buckets.get(le, 0.0) + growth(s)
    p99 = histogram_quantile(0.99, buckets)
    assert p99 is not None
    return p99


@pytest.fixture(scope="module")
def prod_rules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """prod's PrometheusRule during a canary release (alerts for stable and canary)."""
    spec = _rules(
        _render(PROD_CANARY, _env_files("prod"), tmp_path_factory.mktemp("r"), "nepse-prod")
    )
    assert spec is not None
    return spec


def _rule(spec: dict[str, Any], alert: str, track: str) -> dict[str, Any]:
    (rule,) = [
        r
        for g in spec["groups"]
        for r in g["rules"]
        if r["alert"] == alert and r["labels"]["track"] == track
    ]
    return rule


def _expected(spec: dict, alert: str, firing: dict[str, float]) -> list[dict[str, Any]]:
    """promtool exp_alerts: the alert of each track in ``firing``, with its value."""
    out = []
    for track, value_ in sorted(firing.items()):
        rule = _rule(spec, alert, track)
        out.append(
            {"exp_labels": dict(rule["labels"]), "exp_annotations": _annotations(rule, value_)}
        )
    return out


def _promtool_test(
    tmp: Path,
    spec: dict[str, Any],
    series: list[dict[str, str]],
    growth: Growth,
    alert: str,
    firing: dict[str, float],
) -> subprocess.CompletedProcess[str]:
    """Evaluate ``alert`` before its `for:` has passed (nothing fires) and well after it
    (exactly the tracks in ``firing`` fire, with these values)."""
    rule = _rule(spec, alert, "stable")
    hold = _duration(rule["for"])
    (tmp / "rules.yaml").write_text(yaml.safe_dump(spec))
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": alert,
                "interval": "1m",
                "input_series": _input_series(series, growth),
                "alert_rule_test": [
                    {"eval_time": f"{hold // 60}m", "alertname": alert, "exp_alerts": []},
                    {
                        "eval_time": f"{MINUTES - 1}m",
                        "alertname": alert,
                        "exp_alerts": _expected(spec, alert, firing),
                    },
                ],
            }
        ],
    }
    assert hold // 60 + 1 < MINUTES - 1 - hold // 60, "the series are too short for `for:`"
    (tmp / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    return _promtool_run("test", "rules", "test.yaml", cwd=tmp)


def _passes(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def _prediction(s: dict[str, str]) -> bool:
    return s["__name__"] == REQUESTS and s["route"] in PREDICTION_ROUTES


def failing(track: str) -> Growth:
    """Every track answers its prediction requests; ``track``'s batches also fail (500)."""

    def growth(s: dict[str, str]) -> float:
        if _prediction(s) and s["status"] == "200":
            return 10
        if _prediction(s) and s["status"] == "500" and s["track"] == track:
            return 2
        return 0

    return growth


ERROR = "NepsePredictorErrorRatioHigh"
LATENCY = "NepsePredictorLatencyP99High"


def test_the_error_ratio_alert_fires_for_the_failing_track_only(
    real_series, prod_rules, tmp_path: Path
) -> None:
    growth = failing("canary")
    ratio = _error_ratio(real_series, growth, "canary")
    threshold = float(re.search(r"\) > ([0-9.]+)", _rule(prod_rules, ERROR, "canary")["expr"])[1])
    assert ratio > threshold
    assert _error_ratio(real_series, growth, "stable") == 0
    _passes(_promtool_test(tmp_path, prod_rules, real_series, growth, ERROR, {"canary": ratio}))


def test_readiness_503s_and_unmatched_paths_never_fire_the_error_ratio_alert(
    real_series, prod_rules, tmp_path: Path
) -> None:
    def growth(s: dict[str, str]) -> float:
        if _prediction(s) and s["status"] == "200":
            return 10
        if s["__name__"] == REQUESTS and s["route"] == "/ready" and s["status"] == "503":
            return 100  # a pod that never gets ready, probed on and on
        if s["__name__"] == REQUESTS and s["route"] == "unmatched":
            return 100  # a scanner
        return 0

    assert {s["status"] for s in real_series if s.get("route") == "/ready"} >= {"503"}
    _passes(_promtool_test(tmp_path, prod_rules, real_series, growth, ERROR, {}))


def test_unmatched_paths_do_not_dilute_a_tracks_error_ratio(
    real_series, prod_rules, tmp_path: Path
) -> None:
    base = failing("canary")

    def growth(s: dict[str, str]) -> float:
        if s["__name__"] == REQUESTS and s["route"] in ("unmatched", "/ready"):
            return 10_000  # counted with the predictions, these would hide the failures
        return base(s)

    ratio = _error_ratio(real_series, growth, "canary")
    _passes(_promtool_test(tmp_path, prod_rules, real_series, growth, ERROR, {"canary": ratio}))


def latency(slow_track: str) -> Growth:
    """Every prediction answer of ``slow_track`` takes between 0.5 s and 1 s; the others'
    between 2.5 ms and 5 ms."""

    def growth(s: dict[str, str]) -> float:
        if s["__name__"] != BUCKETS or s["route"] not in PREDICTION_ROUTES:
            return 0
        if s["status"] != "200":
            return 0
        slowest = 1.0 if s["track"] == slow_track else 0.005
        return 6 if float(s["le"]) >= slowest else 0

    return growth


def test_the_latency_alert_fires_on_a_slow_track_and_not_on_a_fast_one(
    real_series, prod_rules, tmp_path: Path
) -> None:
    growth = latency("canary")
    p99 = _p99(real_series, growth, "canary")
    assert 0.5 < p99 < 1.0
    assert _p99(real_series, growth, "stable") < 0.005
    _passes(_promtool_test(tmp_path, prod_rules, real_series, growth, LATENCY, {"canary": p99}))


def test_promtool_fails_a_wrong_expectation(real_series, prod_rules, tmp_path: Path) -> None:
    growth = failing("canary")
    ratio = _error_ratio(real_series, growth, "canary")
    wrong = _promtool_test(
        tmp_path, prod_rules, real_series, growth, ERROR, {"canary": ratio, "stable": ratio}
    )
    assert wrong.returncode != 0
    assert "FAILED" in wrong.stdout + wrong.stderr
    wrong_text = _promtool_test(
        tmp_path, prod_rules, real_series, growth, ERROR, {"canary": ratio * 2}
    )
    assert wrong_text.returncode != 0
