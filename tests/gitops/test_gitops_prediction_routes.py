"""One closed list of prediction routes: the service's metrics, the gate and the chart's alert
rules judge a release by the same routes, and nothing else counts."""

from __future__ import annotations

import re
import subprocess

import yaml

from nepse_gitops.gate_config import GateConfig
from nepse_gitops.gate_metrics_scrape import metrics_from_samples, parse_exposition
from nepse_gitops.prediction_routes import PREDICTION_ROUTES, promql_route_matcher
from nepse_predictor import paths
from testkit.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "nepse-predictor"


def _alert_rule_matchers(helm: str) -> set[str]:
    rendered = subprocess.run(
        [helm, "template", "nepse-predictor", str(CHART), "-f", str(CHART / "ci" /
         "07-canary-istio-values.yaml"), "--set", "metrics.prometheusRule.enabled=true",
         "-s", "templates/prometheusrule.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rule = yaml.safe_load(rendered)
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    return {m for e in exprs for m in re.findall(r'route=~"(?:[^"\\]|\\.)*"', e)}


def test_the_gate_counts_the_routes_the_service_labels_as_predictions() -> None:
    assert PREDICTION_ROUTES == paths.PREDICTION_ROUTES


def test_the_alert_rules_match_the_same_routes_as_the_gate(helm: str) -> None:
    assert _alert_rule_matchers(helm) == {promql_route_matcher()}


def test_the_route_regex_matches_each_prediction_route_and_nothing_else() -> None:
    regex = promql_route_matcher().removeprefix('route=~"').removesuffix('"')
    pattern = re.compile(regex.encode().decode("unicode_escape"))
    for route in PREDICTION_ROUTES:
        assert pattern.fullmatch(route)
    for other in ("/ready", "/v2/models/{model_name}/ready", "/v2/models/{model_name}",
                  "unmatched", "/v1/predictx", "/metrics"):  # fmt: skip
        assert not pattern.fullmatch(other), other


def test_readiness_503s_while_a_model_loads_are_not_a_candidates_errors() -> None:
    exposition = "\n".join(
        [
            'nepse_http_requests_total{route="/v1/predict",method="POST",status="200"} 200',
            'nepse_http_requests_total{route="/v2/models/{model_name}/ready",method="GET",'
            'status="503"} 50',
            'nepse_http_requests_total{route="/ready",method="GET",status="503"} 40',
            'nepse_http_requests_total{route="unmatched",method="GET",status="404"} 30',
            'nepse_http_requests_total{route="/v2/models/{model_name}/infer",method="POST",'
            'status="500"} 2',
        ]
    )
    metrics = metrics_from_samples("canary", parse_exposition(exposition, "test"), GateConfig())
    assert metrics.requests == 202
    assert metrics.errors == 2
