"""The release plan in policy.yaml: the environments' own plans, the defaults, and errors that
name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git

from nepse_gitops.environments import load_environment
from nepse_gitops.errors import GitopsError
from nepse_gitops.policy import parse_promotion
from nepse_gitops.release_plan import load_release_plan, parse_release_plan
from testkit.paths import REPO_ROOT

WHERE = "environments/prod/policy.yaml"


def test_prod_walks_the_chapters_canary_steps_and_shadows_for_a_week() -> None:
    plan = load_release_plan(load_environment(REPO_ROOT, "prod"))
    assert plan.canary.weights == [5, 25, 50, 100]
    assert [s.pause for s in plan.canary.steps] == [7200, 7200, 7200, 3600]
    assert plan.shadow.duration == 7 * 86400
    assert plan.shadow.min_agreement == 0.97


def test_staging_bakes_before_the_flip_and_before_finish() -> None:
    plan = load_release_plan(load_environment(REPO_ROOT, "staging"))
    assert (plan.blue_green.bake_before_flip, plan.blue_green.bake_before_finish) == (1800, 3600)


def test_a_missing_section_takes_the_defaults_and_steps_replace_them_whole() -> None:
    assert parse_release_plan(None, WHERE).canary.weights == [5, 25, 50, 100]
    plan = parse_release_plan(
        {"canary": {"steps": [{"weight": 10, "pause": "90s"}]}, "shadow": {"duration": "1h"}},
        WHERE,
    )
    assert plan.canary.weights == [10]
    assert plan.canary.steps[0].pause == 90
    assert (plan.shadow.duration, plan.shadow.min_agreement) == (3600, 0.97)


def test_a_step_may_carry_its_own_gate_thresholds() -> None:
    plan = parse_release_plan(
        {"canary": {"steps": [{"weight": 5, "pause": "1m", "gate": {"minRequests": 50}}]}}, WHERE
    )
    assert plan.canary.steps[0].gate == {"minRequests": 50}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"canary": {"steps": [{"weight": 25, "pause": "1h"}, {"weight": 5, "pause": "1h"}]}},
            "release.canary: weights must rise from step to step: steps[1].weight 5 follows "
            "steps[0].weight 25",
        ),
        (
            {"canary": {"steps": [{"weight": 150, "pause": "1h"}]}},
            "release.canary.steps[0].weight: Input should be less than or equal to 100, got 150",
        ),
        (
            {"canary": {"steps": [{"weight": "5", "pause": "1h"}]}},
            "release.canary.steps[0].weight: Input should be a valid integer, got '5'",
        ),
        (
            {"canary": {"steps": [{"weight": 5, "pause": "soon"}]}},
            "release.canary.steps[0].pause: expected a duration such as 30s, 5m, 2h or 7d, "
            "got 'soon'",
        ),
        ({"canary": {"steps": [{"weight": 5}]}}, "release.canary.steps[0].pause: Field required"),
        ({"canary": {"steps": []}}, "release.canary.steps: List should have at least 1 item"),
        ({"shadow": {"duration": "0s"}}, "release.shadow.duration: must be longer than 0s"),
        ({"shadow": {"minAgreement": 1.5}}, "release.shadow.minAgreement: Input should be less"),
        ({"shadow": {"lenght": "1d"}}, "release.shadow.lenght: unknown key"),
        ({"blueGreen": {"bakeBeforeFlip": True}}, "release.blueGreen.bakeBeforeFlip: expected"),
        ({"rollingg": {}}, "release.rollingg: unknown key"),
        ([5, 25], "release must be a mapping"),
    ],
)
def test_a_bad_plan_is_refused_with_the_field_named(section, message: str) -> None:
    with pytest.raises(GitopsError) as info:
        parse_release_plan(section, WHERE)
    assert str(info.value).startswith(f"{WHERE}: ")
    assert message in str(info.value)


def test_the_gates_old_shadow_threshold_points_at_the_plan(repo: Path, nepse_gitops) -> None:
    policy = repo / "environments/prod/policy.yaml"
    policy.write_text(policy.read_text() + "  shadowAgreement:\n    min: 0.9\n")
    git(repo, "commit", "--quiet", "-am", "Set the shadow threshold in the gate")
    result = nepse_gitops(repo, "gate", "--env", "prod", "--prometheus", "http://127.0.0.1:9")
    assert result.code == 2
    assert "gate.shadowAgreement: the shadow's agreement threshold is release.shadow" in result.err


def test_advance_refuses_a_bad_plan_naming_the_field(repo: Path, nepse_gitops) -> None:
    policy = repo / "environments/prod/policy.yaml"
    policy.write_text(policy.read_text().replace("weight: 25", "weight: 2"))
    git(repo, "commit", "--quiet", "-am", "Misorder the steps")
    assert (
        nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod", "--no-branch").code == 0
    )
    result = nepse_gitops(repo, "advance", "--env", "prod")
    assert result.code == 2
    assert "environments/prod/policy.yaml: release.canary: weights must rise" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"strategy": "blue"},
            "promotion.strategy is 'blue'; expected rolling, canary or blueGreen",
        ),
        ({"stratgy": "canary"}, "promotion.stratgy: unknown key"),
        (["canary"], "promotion must be a mapping, got ['canary']"),
    ],
)
def test_a_bad_promotion_section_is_refused_with_the_field_named(section, message: str) -> None:
    with pytest.raises(GitopsError) as info:
        parse_promotion(section, WHERE)
    assert str(info.value) == f"{WHERE}: {message}"
