"""The gate's thresholds in policy.yaml: parsed into a model that refuses unknown keys, with
errors that name the file and the field."""

from __future__ import annotations

import pytest

from nepse_gitops.environments import load_environment
from nepse_gitops.errors import GitopsError
from nepse_gitops.gate_config import GateConfig, load_gate_config, parse_gate_section
from testkit.paths import REPO_ROOT

WHERE = "environments/prod/policy.yaml: gate"


def test_prods_gate_reads_as_written() -> None:
    cfg = load_gate_config(load_environment(REPO_ROOT, "prod"))
    assert (cfg.min_requests, cfg.max_error_ratio, cfg.max_error_ratio_increase) == (
        500,
        0.01,
        0.005,
    )
    assert (cfg.max_p99_seconds, cfg.max_p99_ratio, cfg.p99_ratio_floor) == (0.25, 1.5, 0.05)
    assert (cfg.prometheus_track_label, cfg.prometheus_window) == ("track", "15m")
    assert cfg.min_shadow_agreement == 0.97  # the release plan's


def test_an_empty_gate_takes_the_defaults() -> None:
    assert parse_gate_section({"errorRatio": None}, WHERE) == GateConfig()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"minRequests": 0}, "gate.minRequests must be at least 1, got 0"),
        ({"minRequests": "5"}, "gate.minRequests must be a number, got '5'"),
        ({"errorRatio": {"max": 2}}, "gate.errorRatio.max must be between 0.0 and 1, got 2"),
        ({"errorRatio": {"max": True}}, "gate.errorRatio.max must be a number, got True"),
        ({"p99Seconds": [1]}, "gate.p99Seconds must be a mapping, got [1]"),
        ({"errorStatuses": "5(("}, "gate.errorStatuses is not a regex: "),
        (
            {"prometheus": {"window": "soon"}},
            "gate.prometheus.window: expected a duration such as 30s, 5m, 2h or 7d, got 'soon'",
        ),
        (
            {"minRequest": 5},
            "gate: unknown key(s) minRequest (known: errorRatio, errorStatuses, minRequests, "
            "p99Seconds, prometheus)",
        ),
        (
            {"errorRatio": {"mx": 0.1}},
            "gate.errorRatio: unknown key(s) mx (known: max, maxIncrease)",
        ),
    ],
)
def test_a_bad_gate_is_refused_with_the_field_named(section: object, message: str) -> None:
    with pytest.raises(GitopsError) as info:
        parse_gate_section(section, WHERE)
    assert str(info.value).startswith("environments/prod/policy.yaml: ")
    assert message in str(info.value)
    assert info.value.exit_code == 2
