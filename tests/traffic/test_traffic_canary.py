"""Canary through the chart's router: the measured share, a weight change, the header."""

from __future__ import annotations

import time

from testkit.scenario import assert_nothing_failed, traffic_line, under_load

ROUTER_REPLICAS = 2


def _routers(r) -> int:
    """Router pods that exist, terminating ones included."""
    return len(r.release.items("pod", "app.kubernetes.io/component=router"))


def _install_canary(r, weight: int) -> tuple[str, int]:
    r.install(
        "--set", "rollout.strategy=canary",
        "--set", "traffic.provider=router",
        "--set", f"rollout.canary.weight={weight}",
        *r.slot("stable", "traffic-a", "v1"),
        *r.slot("canary", "traffic-b", "v2"),
    )  # fmt: skip
    return r.service_address("nepse-predictor")


def test_canary_weight_share_and_weight_change(traffic_release, report) -> None:
    r = traffic_release
    host, port = _install_canary(r, 20)

    with under_load(host, port, requests=3000, rate=200.0) as (loop, _):
        pass
    result = loop.result
    share = result.share("canary")
    report(traffic_line("canary-weight weight=20", result, share=share))
    assert_nothing_failed(result)
    assert abs(share - 0.20) <= 0.03, f"canary share {share:.3f}, configured 0.20"

    with under_load(host, port, requests=2000, rate=200.0) as (loop, step):
        step.mark()
        r.upgrade("--reuse-values", "--set", "rollout.canary.weight=50", wait=True)
        # Until the old routers have drained their connections some answers still use 20 %.
        r.release.cluster.wait_until(
            "only the new routers", lambda: _routers(r) == ROUTER_REPLICAS, timeout=90
        )
        settled = time.monotonic()
        loop.run_until(requests=loop.result.requests + 1000)
    result = loop.result
    share = result.share("canary", since=settled)
    report(traffic_line("canary-weight weight=20->50", result, share=share))
    assert_nothing_failed(result)
    assert abs(share - 0.50) <= 0.05, f"canary share after the change {share:.3f}, wanted 0.50"


def test_canary_header_always_reaches_the_canary(traffic_release, report) -> None:
    r = traffic_release
    host, port = _install_canary(r, 5)

    with under_load(host, port, headers={"x-canary": "true"}) as (loop, _):
        pass
    result = loop.result
    report(traffic_line("canary-header", result, share=result.share("canary")))
    assert_nothing_failed(result)
    assert result.tracks() == {"canary": result.requests}


def test_router_config_change_loses_no_request(traffic_release, report) -> None:
    r = traffic_release
    host, port = _install_canary(r, 20)

    with under_load(host, port) as (loop, step):
        step.mark()
        r.upgrade("--reuse-values", "--set", "traffic.router.workerConnections=2048", wait=True)
        r.release.cluster.kubectl(
            "-n", r.release.namespace, "rollout", "restart", "deployment/nepse-predictor-router"
        )
        r.release.cluster.kubectl(
            "-n", r.release.namespace, "rollout", "status", "deployment/nepse-predictor-router",
            "--timeout=120s", timeout=150,
        )  # fmt: skip
    result = loop.result
    report(traffic_line("router-config-change", result))
    assert_nothing_failed(result)
