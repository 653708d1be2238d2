"""The chart's router for real: nginx with the rendered ConfigMap in front of real services.

Measured and printed: the canary share of 5,000 requests against the configured weight, the
header override, stickiness by header and by cookie, a blue/green flip with `nginx -s reload`
under load, and shadow mirroring with sampling.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from routerkit import Router

from testkit.service import ServiceProcess

pytestmark = pytest.mark.slow

THREADS = 8
CANARY = {"rollout": {"strategy": "canary", "canary": {"weight": 20}}}


def report(capsys: pytest.CaptureFixture, line: str) -> None:
    with capsys.disabled():
        print(f"\n[router] {line}", flush=True)


def send_many(url: str, body: bytes, headers_for, count: int) -> list[httpx.Response]:
    """POST /v1/predict `count` times from THREADS keep-alive clients; every answer is kept."""
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=THREADS)) as client:

        def one(i: int) -> httpx.Response:
            return client.post(
                f"{url}/v1/predict",
                content=body,
                headers={"content-type": "application/json", **headers_for(i)},
            )

        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(one, range(count)))


def test_canary_share_matches_the_weight(router: Router, predict_body, capsys) -> None:
    weight, count = 20, 5000
    router.start(CANARY)
    answers = send_many(router.url, predict_body, lambda i: {}, count)
    assert Counter(a.status_code for a in answers) == {200: count}
    tracks = Counter(a.headers["x-track"] for a in answers)
    assert set(tracks) == {"stable", "canary"}
    share = 100 * tracks["canary"] / count
    versions = {a.headers["x-track"]: a.headers["x-model-version"] for a in answers}
    report(
        capsys,
        f"canary share: {tracks['canary']}/{count} = {share:.2f}% "
        f"(configured {weight}%, allowed +-2 points); model versions {versions}",
    )
    assert abs(share - weight) <= 2
    assert versions == {"stable": "v1", "canary": "v2"}


def test_canary_header_always_reaches_the_canary(router: Router, predict_body, capsys) -> None:
    router.start({"rollout": {"strategy": "canary", "canary": {"weight": 0}}})
    forced = send_many(router.url, predict_body, lambda i: {"x-canary": "true"}, 500)
    plain = send_many(router.url, predict_body, lambda i: {"x-canary": "false"}, 200)
    forced_tracks = Counter(a.headers["x-track"] for a in forced)
    plain_tracks = Counter(a.headers["x-track"] for a in plain)
    report(
        capsys,
        f"x-canary: true at weight 0 -> {dict(forced_tracks)}; "
        f"x-canary: false -> {dict(plain_tracks)}",
    )
    assert forced_tracks == {"canary": 500}
    assert plain_tracks == {"stable": 200}


def test_sticky_header_keeps_each_user_on_one_track(router: Router, predict_body, capsys) -> None:
    router.start(
        {
            "rollout": {
                "strategy": "canary",
                "canary": {"weight": 30, "stickiness": {"mode": "header", "name": "x-user-id"}},
            }
        }
    )
    users = [f"user-{i}" for i in range(300)]
    answers = send_many(router.url, predict_body, lambda i: {"x-user-id": users[i % 300]}, 1500)
    seen: dict[str, set[str]] = defaultdict(set)
    for i, a in enumerate(answers):
        seen[users[i % 300]].add(a.headers["x-track"])
    split = sum(1 for s in seen.values() if len(s) > 1)
    on_canary = sum(1 for s in seen.values() if s == {"canary"})
    report(
        capsys,
        f"sticky header: 300 users x 5 requests, {split} users saw both tracks, "
        f"{on_canary} users ({100 * on_canary / 300:.1f}%) on the canary (weight 30%)",
    )
    assert split == 0
    assert 0 < on_canary < 300


def test_sticky_cookie_keeps_each_user_on_one_track(router: Router, predict_body, capsys) -> None:
    router.start(
        {
            "rollout": {
                "strategy": "canary",
                "canary": {"weight": 50, "stickiness": {"mode": "cookie", "name": "nepse_user"}},
            }
        }
    )
    split = on_canary = 0
    for _ in range(100):
        # One client per user, like a browser: it keeps the cookie the router sets.
        with httpx.Client(timeout=30) as browser:
            first = browser.post(
                f"{router.url}/v1/predict",
                content=predict_body,
                headers={"content-type": "application/json"},
            )
            cookie = first.headers["set-cookie"]
            assert cookie.startswith("nepse_user=") and "Max-Age=86400" in cookie
            assert browser.cookies.get("nepse_user")
            tracks = {first.headers["x-track"]}
            for _ in range(4):
                again = browser.post(
                    f"{router.url}/v1/predict",
                    content=predict_body,
                    headers={"content-type": "application/json"},
                )
                assert "set-cookie" not in again.headers
                tracks.add(again.headers["x-track"])
        split += len(tracks) > 1
        on_canary += tracks == {"canary"}
    report(
        capsys,
        f"sticky cookie: 100 users x 5 requests, {split} users saw both tracks, "
        f"{on_canary} on the canary (weight 50%)",
    )
    assert split == 0
    assert 0 < on_canary < 100


def test_blue_green_flip_under_load_loses_no_request(router: Router, predict_body, capsys) -> None:
    """Half the clients open a connection per request, half keep connections alive. nginx's old
    workers finish every request they accepted; an idle keep-alive connection they close may
    race with a request the client just wrote, which the server never read: such a request is
    sent again once, as HTTP clients do for a reused connection closed before any answer
    (RFC 9110, 9.2.2). Those resends are counted and reported; nothing else is retried."""
    blue = {"rollout": {"strategy": "blueGreen", "blueGreen": {"activeColor": "blue"}}}
    green = {"rollout": {"strategy": "blueGreen", "blueGreen": {"activeColor": "green"}}}
    router.start(blue)
    results: list[tuple[float, str]] = []  # (time, track or failure)
    resent = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    headers = {"content-type": "application/json"}

    def load(keep_alive: bool) -> None:
        limits = httpx.Limits(max_keepalive_connections=1 if keep_alive else 0)
        with httpx.Client(timeout=30, limits=limits) as client:
            while not stop.is_set():
                outcome = None
                for attempt in range(2):
                    try:
                        r = client.post(
                            f"{router.url}/v1/predict", content=predict_body, headers=headers
                        )
                        ok = r.status_code == 200
                        outcome = r.headers["x-track"] if ok else f"HTTP {r.status_code}"
                        break
                    except httpx.RemoteProtocolError as exc:
                        closed_idle = "without sending a response" in str(exc)
                        if keep_alive and closed_idle and attempt == 0:
                            with lock:
                                resent["keep-alive"] += 1
                            continue
                        outcome = f"error: {exc!r}"
                        break
                    except httpx.HTTPError as exc:
                        outcome = f"error: {exc!r}"
                        break
                with lock:
                    results.append((time.monotonic(), outcome))

    threads = [threading.Thread(target=load, args=(i % 2 == 0,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    flipped_at = router.reload(green)
    time.sleep(2.5)
    stop.set()
    for t in threads:
        t.join(timeout=30)

    failures = [o for _, o in results if o not in ("blue", "green")]
    before = Counter(o for t, o in results if t < flipped_at)
    first_green = min(t for t, o in results if o == "green")
    settled = Counter(o for t, o in results if t > first_green + 0.5)
    report(
        capsys,
        f"blue/green flip under load: {len(results)} requests, {len(failures)} lost "
        f"({resent['keep-alive']} resent once after an idle keep-alive connection was closed "
        f"by an old worker before it read them); before the reload {dict(before)}; first "
        f"green answer {1000 * (first_green - flipped_at):.0f} ms after `nginx -s reload`; "
        f"from 0.5 s later {dict(settled)}",
    )
    assert not failures, failures[:5]
    assert set(before) == {"blue"}
    assert set(settled) == {"green"}


def test_shadow_gets_sampled_copies_and_never_answers(
    router: Router, backends: dict[str, ServiceProcess], predict_body, capsys
) -> None:
    percent, count = 40, 1000
    router.start({"rollout": {"strategy": "shadow", "shadow": {"percent": percent}}})
    shadow = backends["shadow"]
    already = {e["request_id"] for e in shadow.access_log()}
    run_id = uuid.uuid4().hex[:8]
    ids = [f"shadow-{run_id}-{i}" for i in range(count)]
    answers = send_many(router.url, predict_body, lambda i: {"x-request-id": ids[i]}, count)
    # A second batch without client ids: the router's own id must reach both tracks.
    anonymous = send_many(router.url, predict_body, lambda i: {}, 300)

    assert Counter(a.status_code for a in answers + anonymous) == {200: count + 300}
    client_tracks = Counter(a.headers["x-track"] for a in answers + anonymous)
    assert [a.headers["x-request-id"] for a in answers] == ids

    # The mirror relay logs each copy it forwarded: the sampled requests.
    mirrored = [e for e in router.access_log() if e.get("mirror")]
    sampled = {e["request_id"] for e in mirrored}
    sampled_ids = sampled & set(ids)
    anonymous_ids = {a.headers["x-request-id"] for a in anonymous}
    sampled_anonymous = sampled & anonymous_ids

    deadline = time.monotonic() + 15
    while True:
        at_shadow = {e["request_id"] for e in shadow.access_log()} - already
        if sampled <= at_shadow or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    reached = len(sampled_ids & at_shadow)
    reached_anonymous = len(sampled_anonymous & at_shadow)
    unsampled_at_shadow = at_shadow - sampled
    share = 100 * len(sampled_ids) / count
    report(
        capsys,
        f"shadow: {len(sampled_ids)}/{count} requests sampled = {share:.1f}% "
        f"(configured {percent}%); {reached}/{len(sampled_ids)} "
        f"({100 * reached / max(1, len(sampled_ids)):.2f}%) reached the shadow with the same "
        f"X-Request-Id; router-made ids: {reached_anonymous}/{len(sampled_anonymous)}; "
        f"unsampled copies at the shadow: {len(unsampled_at_shadow)}; tracks seen by "
        f"clients: {dict(client_tracks)}",
    )
    assert client_tracks == {"stable": count + 300}
    assert abs(share - percent) <= 5
    assert reached >= 0.99 * len(sampled_ids)
    assert reached_anonymous >= 0.99 * len(sampled_anonymous)
    assert not unsampled_at_shadow
