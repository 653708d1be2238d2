"""A promotion (new image tag + model version in a slot) rolls out a new ReplicaSet, and
`helm rollback` brings the previous pod template back exactly.

Measured here, and printed as the project's rollout and rollback timings:
  rollout_seconds   from the start of `helm upgrade` until the Deployment's rollout is complete
                    (every pod from the new ReplicaSet, available; no old pod left)
  rollback_seconds  from the start of `helm rollback` until the same holds for the previous
                    ReplicaSet again
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_cluster import CHART, Release, container, env_of, rollout_complete, value_args

pytestmark = pytest.mark.slow

BASE = CHART / "ci" / "02-rolling-router-values.yaml"  # rolling, router, model fetched by URL
OLD = {
    "imageTag": "0.1.0",
    "modelVersion": "2026.11.01-1a2b3c4",
    "modelSha256": "ced3dcf27559d6446abc8378c81a037c3a6da90d479fa0d45daf8d90c843ba1d",
}
NEW = {
    "imageTag": "0.2.0",
    "modelVersion": "2026.11.20-b2c3d4e",
    "modelSha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}
STABLE = "nepse-predictor-stable"
ROUTER = "nepse-predictor-router"


def _slot_values(tmp_path: Path, name: str, slot: dict[str, str]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"replicaCount": 3, "slots": {"stable": slot}}))
    return path


def _serves(template: dict[str, Any], slot: dict[str, str]) -> bool:
    predictor = container(template, "predictor")
    return (
        predictor["image"] == f"nepse-predictor:{slot['imageTag']}"
        and env_of(predictor)["NEPSE_MODEL_DIR"] == f"/models/{slot['modelVersion']}"
    )


def _rolled_out_to(release: Release, slot: dict[str, str]) -> dict[str, Any] | None:
    """The current ReplicaSet once the rollout to ``slot`` is complete, else None."""
    deployment = release.get("deployment", STABLE)
    if not (_serves(deployment["spec"]["template"], slot) and rollout_complete(deployment)):
        return None
    return release.current_replicaset(STABLE)


def _only_pods_of(release: Release, rs: dict[str, Any]) -> None:
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    pods = release.pods("nepse-predictor/track=stable")
    assert len(pods) == rs["spec"]["replicas"] == 3
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {pod_hash}


def test_new_slot_rolls_out_a_new_replicaset_and_rollback_restores_the_previous_template(
    release: Release, tmp_path: Path, report_timing: Callable[..., None]
) -> None:
    old_values, new_values = _slot_values(tmp_path, "old", OLD), _slot_values(tmp_path, "new", NEW)
    release.install(*value_args(BASE, old_values))
    before = release.wait_rolled_out(STABLE)
    old_rs = release.current_replicaset(STABLE)
    router_rs = release.current_replicaset(ROUTER)
    old_template = before["spec"]["template"]
    assert _serves(old_template, OLD)
    assert env_of(container(old_template, "predictor"))["NEPSE_TRACK"] == "stable"
    _only_pods_of(release, old_rs)

    # Promotion: the slot's image tag and model version move together.
    started = time.monotonic()
    release.upgrade(*value_args(BASE, new_values))
    new_rs = release.cluster.wait_until(
        "the rollout of the new slot", lambda: _rolled_out_to(release, NEW), interval=0.1
    )
    rollout_seconds = time.monotonic() - started

    assert new_rs["metadata"]["name"] != old_rs["metadata"]["name"]
    template = new_rs["spec"]["template"]
    predictor = container(template, "predictor")
    assert predictor["image"] == "nepse-predictor:0.2.0"
    assert env_of(predictor) == {
        **env_of(container(old_template, "predictor")),
        "NEPSE_MODEL_DIR": "/models/2026.11.20-b2c3d4e",
    }
    fetch = container(template, "fetch-model", init=True)
    assert fetch["image"] == "nepse-predictor:0.2.0"
    assert (
        "https://models.nepse.example.com/nepse-predictor/2026.11.20-b2c3d4e/" in fetch["command"]
    )
    assert NEW["modelSha256"] in fetch["command"]
    assert (
        template["metadata"]["annotations"]["nepse-predictor/model-version"] == NEW["modelVersion"]
    )
    old_now = release.get("replicaset", old_rs["metadata"]["name"])
    assert old_now["spec"]["replicas"] == 0
    _only_pods_of(release, new_rs)
    # The router's upstream is the stable Service: a promotion does not touch it.
    assert release.current_replicaset(ROUTER)["metadata"]["name"] == router_rs["metadata"]["name"]

    # Rollback: the previous pod template, and its ReplicaSet, come back.
    started = time.monotonic()
    release.rollback(1)
    restored_rs = release.cluster.wait_until(
        "the rollback to the previous slot", lambda: _rolled_out_to(release, OLD), interval=0.1
    )
    rollback_seconds = time.monotonic() - started

    after = release.get("deployment", STABLE)["spec"]["template"]
    assert container(after, "predictor")["image"] == container(old_template, "predictor")["image"]
    assert container(after, "predictor")["env"] == container(old_template, "predictor")["env"]
    assert container(after, "fetch-model", init=True) == container(
        old_template, "fetch-model", init=True
    )
    assert after == old_template
    assert restored_rs["metadata"]["name"] == old_rs["metadata"]["name"]
    assert release.get("replicaset", new_rs["metadata"]["name"])["spec"]["replicas"] == 0
    _only_pods_of(release, restored_rs)
    history = release.history()
    assert [h["status"] for h in history] == ["superseded", "superseded", "deployed"]
    assert history[-1]["description"] == "Rollback to 1"

    report_timing(rollout_seconds=rollout_seconds, rollback_seconds=rollback_seconds)
