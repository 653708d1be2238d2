"""Release steps as commits: canary weights, blue-green flip, shadow start/stop, finish."""

from __future__ import annotations

from pathlib import Path

from conftest import V1, V2, V3, git, log_subjects, rendered, snapshot


def _status(nepse_gitops, repo: Path, env: str) -> str:
    """The first line of `status`: strategy, what is served, the candidate."""
    return nepse_gitops(repo, "status", "--env", env).out.splitlines()[0]


def test_prod_canary_walks_through_weights_and_finishes_as_stable(
    repo: Path, nepse_gitops, helm: str
) -> None:
    release_before = (repo / "environments/prod/release.yaml").read_bytes()
    assert (
        nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod", "--no-branch").code == 0
    )
    for weight in ("5", "25", "50"):
        result = nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", weight)
        assert result.code == 0, result.err
    assert _status(nepse_gitops, repo, "prod") == (
        f"prod: canary, serves {V1[0]}/{V1[1]} (stable), "
        f"candidate canary={V2[0]}/{V2[1]} at weight 50"
    )
    manifests = rendered(repo, "prod", helm)
    assert "weight: 50" in manifests

    result = nepse_gitops(repo, "finish", "--env", "prod")

    assert result.code == 0, result.err
    assert _status(nepse_gitops, repo, "prod") == f"prod: rolling, serves {V2[0]}/{V2[1]} (stable)"
    assert log_subjects(repo)[:5] == [
        f"finish(prod): stable={V2[0]}/{V2[1]}",
        "step(prod): canary weight 25 -> 50",
        "step(prod): canary weight 5 -> 25",
        "step(prod): canary weight 0 -> 5",
        f"promote(prod): canary={V2[0]}/{V2[1]} from staging",
    ]
    text = (repo / "environments/prod/release.yaml").read_text()
    assert "strategy:" not in text
    # After the release only the stable slot's three values differ from before it.
    changed = [
        (a, b)
        for a, b in zip(release_before.decode().splitlines(), text.splitlines(), strict=True)
        if a != b
    ]
    assert [b.strip() for _, b in changed] == [
        f'imageTag: "{V2[0]}"',
        f'modelVersion: "{V2[1]}"',
        f'modelSha256: "{V2[2]}"',
    ]
    manifests = rendered(repo, "prod", helm)
    assert "nepse-predictor-canary" not in manifests
    assert f"nepse-predictor:{V2[0]}" in manifests


def test_staging_blue_green_promote_flip_finish(repo: Path, nepse_gitops, helm: str) -> None:
    assert (
        nepse_gitops(
            repo,
            "promote",
            "--to",
            "dev",
            "--image-tag",
            V3[0],
            "--model-version",
            V3[1],
            "--model-sha256",
            V3[2],
            "--no-branch",
        ).code
        == 0
    )
    assert (
        nepse_gitops(repo, "promote", "--from", "dev", "--to", "staging", "--no-branch").code == 0
    )
    assert _status(nepse_gitops, repo, "staging") == (
        f"staging: blueGreen, serves {V2[0]}/{V2[1]} (green), candidate blue={V3[0]}/{V3[1]}"
    )
    early = nepse_gitops(repo, "finish", "--env", "staging")
    assert early.code == 1
    assert "has not been flipped to yet; run `nepse-gitops flip --env staging` first" in early.err

    assert nepse_gitops(repo, "flip", "--env", "staging").code == 0
    assert "active colour green -> blue" in log_subjects(repo)[0]
    router = rendered(repo, "staging", helm)
    assert "blue" in router

    assert nepse_gitops(repo, "finish", "--env", "staging").code == 0
    assert _status(nepse_gitops, repo, "staging") == (
        f"staging: blueGreen, serves {V3[0]}/{V3[1]} (blue)"
    )
    text = (repo / "environments/staging/release.yaml").read_text()
    assert text.count(V3[0]) == 2 and V2[0] not in text


def test_shadow_start_and_stop_in_prod(repo: Path, nepse_gitops, helm: str) -> None:
    files_before = snapshot(repo).files
    result = nepse_gitops(
        repo, "shadow", "start", "--env", "prod", "--from", "staging", "--percent", "20"
    )
    assert result.code == 0, result.err
    assert log_subjects(repo)[0] == f"shadow(prod): start {V2[0]}/{V2[1]} at 20%"
    manifests = rendered(repo, "prod", helm)
    assert "mirror" in manifests
    assert "nepse-predictor-shadow" in manifests

    refused = nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod")
    assert refused.code == 1
    assert "it is in a shadow phase" in refused.err

    assert nepse_gitops(repo, "shadow", "stop", "--env", "prod").code == 0
    files = snapshot(repo).files
    # The stop leaves the file as it was before the start, except the mirrored percentage.
    before = files_before["environments/prod/release.yaml"].decode()
    assert files["environments/prod/release.yaml"].decode() == before.replace(
        "percent: 100", "percent: 20"
    )


def test_a_fractional_shadow_percentage_is_kept_exactly(repo: Path, nepse_gitops, helm) -> None:
    result = nepse_gitops(
        repo, "shadow", "start", "--env", "prod", "--from", "staging", "--percent", "12.5"
    )
    assert result.code == 0, result.err
    assert "percent: 12.5" in (repo / "environments/prod/release.yaml").read_text()
    assert "12.5" in rendered(repo, "prod", helm)
    status = nepse_gitops(repo, "status")
    assert "mirrored 12.5%" in status.out


def test_steps_refuse_when_the_environment_is_not_in_that_phase(repo: Path, nepse_gitops) -> None:
    before = snapshot(repo)
    weight = nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", "5")
    flip = nepse_gitops(repo, "flip", "--env", "prod")
    finish = nepse_gitops(repo, "finish", "--env", "dev")
    stop = nepse_gitops(repo, "shadow", "stop", "--env", "prod")
    bad = nepse_gitops(repo, "set-weight", "--env", "prod", "--weight", "150")

    assert weight.code == 1 and "no canary is running there" in weight.err
    assert flip.code == 1 and "its rollout.strategy is 'rolling', not 'blueGreen'" in flip.err
    assert finish.code == 1 and "the rolling strategy has no candidate" in finish.err
    assert stop.code == 1 and "none is running" in stop.err
    assert bad.code == 2 and "--weight must be between 0 and 100, got 150" in bad.err
    assert snapshot(repo) == before


def test_a_step_lands_on_a_new_branch_when_asked(repo: Path, nepse_gitops) -> None:
    assert (
        nepse_gitops(repo, "promote", "--from", "staging", "--to", "prod", "--no-branch").code == 0
    )
    result = nepse_gitops(
        repo, "set-weight", "--env", "prod", "--weight", "5", "--branch", "release/prod-5"
    )
    assert result.code == 0, result.err
    assert git(repo, "branch", "--show-current").strip() == "release/prod-5"
    assert git(repo, "log", "-1", "--format=%(trailers:key=Nepse-Weight,valueonly)").strip() == "5"
