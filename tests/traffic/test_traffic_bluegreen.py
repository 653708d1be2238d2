"""Blue-green flips under load: through the router, and with plain Services."""

from __future__ import annotations

import pytest

from testkit.scenario import assert_nothing_failed, traffic_line, under_load, version_is


@pytest.mark.parametrize("provider", ["router", "none"])
def test_bluegreen_flip_loses_no_request(traffic_release, report, provider: str) -> None:
    r = traffic_release
    r.install(
        "--set", "rollout.strategy=blueGreen",
        "--set", f"traffic.provider={provider}",
        "--set", "rollout.blueGreen.activeColor=blue",
        *r.slot("blue", "traffic-a", "v1"),
        *r.slot("green", "traffic-b", "v2"),
    )  # fmt: skip
    # The main Service: the router pods with provider=router, the active colour's otherwise.
    host, port = r.service_address("nepse-predictor")

    with under_load(host, port) as (loop, step):
        loop.wait_for("answers from blue", lambda a: any(x.track == "blue" for x in a), 30)
        step.mark()
        r.upgrade("--reuse-values", "--set", "rollout.blueGreen.activeColor=green", wait=True)
        loop.wait_for("only green answers", lambda a: all(x.track == "green" for x in a), 60)
    result = loop.result
    seconds = result.settled_after(step.at, version_is("v2"))
    report(traffic_line(f"bluegreen-flip provider={provider}", result, seconds=seconds))
    assert_nothing_failed(result)
    assert seconds is not None
    after = [a for a in result.answers if a.started >= step.at + seconds]
    assert after and all(a.version == "v2" and a.track == "green" for a in after)
