"""Pods evicted one after another through the Eviction API, under load, with the PDB on."""

from __future__ import annotations

import json
import time

from testkit.scenario import assert_nothing_failed, traffic_line, under_load

REPLICAS = 3


def _evict(r, pod: str) -> int:
    """POST an Eviction for ``pod``; the HTTP status the API server answered."""
    body = json.dumps(
        {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": r.release.namespace},
        }
    )
    result = r.release.cluster.kubectl(
        "create", "--raw",
        f"/api/v1/namespaces/{r.release.namespace}/pods/{pod}/eviction",
        "-f", "-", input=body, check=False,
    )  # fmt: skip
    if result.returncode == 0:
        return 201
    return 429 if "TooManyRequests" in result.stderr or "disruption budget" in result.stderr else 0


def _disruptions_allowed(r) -> int:
    pdb = r.release.get("pdb", "nepse-predictor-stable")
    return pdb.get("status", {}).get("disruptionsAllowed", 0)


def test_pod_eviction_respects_the_pdb_and_loses_no_request(traffic_release, report) -> None:
    r = traffic_release
    r.install(
        "--set", "rollout.strategy=rolling",
        "--set", f"replicaCount={REPLICAS}",
        "--set", "podDisruptionBudget.maxUnavailable=1",
        *r.slot("stable", "traffic-a", "v1"),
    )  # fmt: skip
    host, port = r.service_address("nepse-predictor")
    originals = [p["metadata"]["name"] for p in r.release.pods("nepse-predictor/track=stable")]
    assert len(originals) == REPLICAS
    refused = 0
    with under_load(host, port) as (loop, step):
        step.mark()
        for index, pod in enumerate(originals):
            r.release.cluster.wait_until(
                "the PDB to allow a disruption", lambda: _disruptions_allowed(r) >= 1, timeout=90
            )
            assert _evict(r, pod) == 201, f"eviction of {pod} was not accepted"
            if index + 1 < len(originals):
                status = _evict(r, originals[index + 1])
                assert status == 429, f"a second eviction at once got {status}, not 429"
                refused += 1
            time.sleep(0.5)
        r.release.cluster.wait_until(
            "every replacement ready", lambda: _disruptions_allowed(r) >= 1, timeout=90
        )
    result = loop.result
    report(traffic_line("pod-eviction", result) + f" evicted={len(originals)} refused={refused}")
    assert_nothing_failed(result)
    assert refused == len(originals) - 1
