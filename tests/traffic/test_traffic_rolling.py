"""Rolling releases of the stable slot under load: helm upgrade, then helm rollback."""

from __future__ import annotations

from testkit.scenario import assert_nothing_failed, traffic_line, under_load, version_is


def test_rolling_update_and_helm_rollback_lose_no_request(traffic_release, report) -> None:
    r = traffic_release
    tag_a, tag_b = "traffic-a", "traffic-b"
    r.install("--set", "rollout.strategy=rolling", *r.slot("stable", tag_a, "v1"))
    host, port = r.service_address("nepse-predictor")

    with under_load(host, port) as (loop, step):
        loop.wait_for("answers from v1", lambda a: any(x.version == "v1" for x in a), 30)
        step.mark()
        r.upgrade(*r.slot("stable", tag_b, "v2"), wait=True)
        loop.wait_for("only v2 answers", lambda a: all(x.version == "v2" for x in a), 60)
    result = loop.result
    seconds = result.settled_after(step.at, version_is("v2"))
    report(traffic_line("rolling-update", result, seconds=seconds))
    assert_nothing_failed(result)
    assert seconds is not None

    with under_load(host, port) as (loop, step):
        step.mark()
        r.release.rollback(1, wait=True)
        loop.wait_for("only v1 answers", lambda a: all(x.version == "v1" for x in a), 60)
    result = loop.result
    seconds = result.settled_after(step.at, version_is("v1"))
    report(traffic_line("helm-rollback", result, seconds=seconds))
    assert_nothing_failed(result)
    assert seconds is not None


def test_wrong_model_sha256_keeps_the_old_version_serving(traffic_release, report) -> None:
    r = traffic_release
    r.install("--set", "rollout.strategy=rolling", *r.slot("stable", "traffic-a", "v1"))
    host, port = r.service_address("nepse-predictor")
    wrong = "0" * 64

    with under_load(host, port) as (loop, step):
        step.mark()
        r.upgrade(
            *r.slot("stable", "traffic-b", "v2"), "--set", f"slots.stable.modelSha256={wrong}"
        )

        def fetch_refused() -> bool:
            for pod in r.release.pods("nepse-predictor/track=stable"):
                for status in pod["status"].get("initContainerStatuses", []):
                    state = status.get("lastState", {}).get("terminated") or status.get(
                        "state", {}
                    ).get("terminated")
                    if state and state.get("exitCode", 0) != 0:
                        return True
            return False

        r.release.cluster.wait_until("the init container to refuse the model", fetch_refused, 90)
    result = loop.result
    report(traffic_line("wrong-model-sha256", result))
    assert_nothing_failed(result)
    assert {a.version for a in result.answers} == {"v1"}
    new_pods = [
        p
        for p in r.release.pods("nepse-predictor/track=stable")
        if p["spec"]["containers"][0]["image"].endswith(":traffic-b")
    ]
    assert new_pods, "the upgrade made no new pod"
    for pod in new_pods:
        ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        assert ready.get("Ready") != "True", f"{pod['metadata']['name']} is Ready"
