"""`nepse-predictor predictions list|export|stats`: the prediction log read back, selected by
version, track, time and request id, against a real redis-server fed by real servers."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import orjson
import pytest
import redis
from predictions_kit import STREAM, jsonl, log_entry, ok, predictions
from serving_kit import RedisServer, example_row, wait_until

from testkit.net import free_port


@pytest.fixture
def two_versions(start_server, trained_model: Path, second_model: Path, redis_server: RedisServer):
    """v1 on stable and v2 on canary, 6 requests each, all logged."""
    stable = start_server(
        trained_model, redis_url=redis_server.url, track="stable", cache_ttl_seconds=0
    )
    canary = start_server(
        second_model, redis_url=redis_server.url, track="canary", cache_ttl_seconds=0
    )
    for i in range(6):
        for server, name in ((stable, "s"), (canary, "c")):
            response = server.post(
                "/v1/predict",
                {"features": example_row(i / 6)},
                headers={"x-request-id": f"{name}{i}"},
            )
            assert response.status_code == 200
    for server in (stable, canary):
        wait_until(
            lambda s=server: s.metric("nepse_cache_events_total", event="log_written") == 6,
            what="6 log entries written",
        )
    return redis_server.url


def test_export_of_two_versions_leaves_out_the_marked_one_unless_asked(two_versions) -> None:
    url = two_versions
    everything = jsonl(ok("export", "--redis-url", url).stdout)
    assert {(r["model_version"], r["track"]) for r in everything} == {
        ("v1", "stable"),
        ("v2", "canary"),
    }
    assert len(everything) == 12 and not any(r["void"] for r in everything)

    ok("mark", "--redis-url", url, "--model-version", "v2", "--reason", "miscalibrated")
    kept = predictions("export", "--redis-url", url)
    assert kept.returncode == 0, kept.stderr
    rows = jsonl(kept.stdout)
    assert len(rows) == 6 and {r["model_version"] for r in rows} == {"v1"}
    assert "6 entries of void-marked versions left out" in kept.stderr

    with_marked = jsonl(ok("export", "--redis-url", url, "--marked", "include").stdout)
    assert len(with_marked) == 12
    void = [r for r in with_marked if r["void"]]
    assert {r["model_version"] for r in void} == {"v2"} and len(void) == 6
    assert all(r["void_reason"] == "miscalibrated" for r in void)

    only = jsonl(ok("export", "--redis-url", url, "--marked", "only").stdout)
    assert [r["request_id"] for r in only] == [f"c{i}" for i in range(6)]


def test_an_export_record_holds_what_the_server_answered(two_versions) -> None:
    [record] = jsonl(ok("export", "--redis-url", two_versions, "--request-id", "s3").stdout)
    assert record["track"] == "stable" and record["model_version"] == "v1"
    assert record["route"] == "/v1/predict" and record["rows"] == 1
    [p] = record["probabilities"]
    assert 0 <= p <= 1 and record["labels"] == ["up" if p >= 0.5 else "down"]
    assert record["latency_ms"] > 0 and record["time"].endswith("Z")
    assert "features" not in record  # NEPSE_LOG_FEATURES is off


def test_csv_export_has_one_row_per_entry_and_json_lists(two_versions, tmp_path: Path) -> None:
    out = tmp_path / "v1.csv"
    result = ok(
        "export",
        "--redis-url",
        two_versions,
        "--model-version",
        "v1",
        "--format",
        "csv",
        "--out",
        str(out),
    )
    assert "exported 6 entries as csv" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["request_id"] for r in rows] == [f"s{i}" for i in range(6)]
    assert all(r["model_version"] == "v1" and r["void"] == "false" for r in rows)
    assert len(orjson.loads(rows[0]["probabilities"])) == 1
    assert not list(tmp_path.glob(".v1.csv.*"))  # no temporary file left behind


def test_csv_export_defuses_request_ids_a_spreadsheet_would_run(
    start_server, trained_model: Path, redis_server: RedisServer
) -> None:
    server = start_server(trained_model, redis_url=redis_server.url, cache_ttl_seconds=0)
    for rid in ("=1+2", "@SUM", "-3+4", "plain"):
        server.post("/v1/predict", {"features": example_row()}, headers={"x-request-id": rid})
    wait_until(lambda: server.metric("nepse_cache_events_total", event="log_written") == 4)
    text = ok("export", "--redis-url", redis_server.url, "--format", "csv").stdout
    ids = [r["request_id"] for r in csv.DictReader(io.StringIO(text))]
    assert ids == ["'=1+2", "'@SUM", "'-3+4", "plain"]
    # JSON Lines is data, not a spreadsheet: the ids stay as the clients sent them.
    assert [
        r["request_id"] for r in jsonl(ok("export", "--redis-url", redis_server.url).stdout)
    ] == ["=1+2", "@SUM", "-3+4", "plain"]


def test_shadow_answers_are_logged_as_shadow_and_left_out_unless_named(
    start_server, trained_model: Path, second_model: Path, redis_server: RedisServer
) -> None:
    stable = start_server(trained_model, redis_url=redis_server.url, track="stable")
    shadow = start_server(second_model, redis_url=redis_server.url, track="shadow")
    for i in range(4):
        for server in (stable, shadow):  # a mirror: the same request id to both
            server.post(
                "/v1/predict", {"features": example_row(i)}, headers={"x-request-id": f"m{i}"}
            )
    for server in (stable, shadow):
        wait_until(lambda s=server: s.metric("nepse_cache_events_total", event="log_written") == 4)
    client = redis.Redis.from_url(redis_server.url)
    tracks = [f[b"track"] for _, f in client.xrange(STREAM)]
    assert sorted(tracks) == [b"shadow"] * 4 + [b"stable"] * 4

    default = predictions("export", "--redis-url", redis_server.url)
    assert {r["track"] for r in jsonl(default.stdout)} == {"stable"}
    assert "4 shadow answers left out" in default.stderr
    # Asking for the shadow's version alone still does not mix its answers in ...
    assert (
        jsonl(ok("export", "--redis-url", redis_server.url, "--model-version", "v2").stdout) == []
    )
    # ... naming the track does.
    named = jsonl(ok("export", "--redis-url", redis_server.url, "--track", "shadow").stdout)
    assert [(r["track"], r["model_version"]) for r in named] == [("shadow", "v2")] * 4


def test_time_range_selects_by_the_time_the_server_answered(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    now = time.time()
    for i, age in enumerate((7200, 3000, 1000, 10)):  # seconds ago
        log_entry(client, f"r{i}", "v1", [0.6], ts=now - age)
    ids = lambda *args: [  # noqa: E731
        r["request_id"] for r in jsonl(ok("export", "--redis-url", redis_server.url, *args).stdout)
    ]
    assert ids("--since", "1h") == ["r1", "r2", "r3"]
    assert ids("--since", "1h", "--until", "10m") == ["r1", "r2"]
    assert ids("--until", str(now - 5000)) == ["r0"]
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 2000))
    assert ids("--since", moment) == ["r2", "r3"]
    assert ids("--request-id", "r0", "--request-id", "r3") == ["r0", "r3"]


def test_list_shows_the_newest_entries_first_limited(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    for i in range(30):
        log_entry(client, f"r{i}", "v1", [0.1 * (i % 10)])
    table = ok("list", "--redis-url", redis_server.url, "--limit", "5").stdout.splitlines()
    assert table[0].split()[:4] == ["time", "request", "id", "track"]
    assert [line.split()[1] for line in table[1:]] == ["r25", "r26", "r27", "r28", "r29"]
    as_json = orjson.loads(ok("list", "--redis-url", redis_server.url, "-o", "json").stdout)
    assert len(as_json["entries"]) == 20


def test_stats_count_entries_rows_and_label_shares_per_version_and_track(
    redis_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    log_entry(client, "a", "v1", [0.9, 0.2, 0.7, 0.4], ts=1_800_000_000)
    log_entry(client, "b", "v1", [0.5], ts=1_800_000_060)
    log_entry(client, "c", "v2", [0.1], track="canary", ts=1_800_000_030)
    log_entry(client, "a", "v2", [0.8], track="shadow", ts=1_800_000_001)
    ok("mark", "--redis-url", redis_server.url, "--model-version", "v2", "--reason", "r")
    result = ok(
        "stats",
        "--redis-url",
        redis_server.url,
        "-o",
        "json",
        "--track",
        "stable",
        "--track",
        "canary",
        "--track",
        "shadow",
    )
    lines = {(v["model_version"], v["track"]): v for v in orjson.loads(result.stdout)["versions"]}
    assert set(lines) == {("v1", "stable"), ("v2", "canary"), ("v2", "shadow")}
    v1 = lines[("v1", "stable")]
    assert v1["entries"] == 2 and v1["rows"] == 5
    assert v1["up_share"] == pytest.approx(3 / 5) and v1["down_share"] == pytest.approx(2 / 5)
    assert v1["first_seen"] == "2027-01-15T08:00:00.000Z"
    assert v1["last_seen"] == "2027-01-15T08:01:00.000Z"
    assert not v1["void"]
    assert lines[("v2", "canary")]["void"] and lines[("v2", "canary")]["up_share"] == 0
    table = ok("stats", "--redis-url", redis_server.url).stdout
    assert "VOID" in table and "shadow" not in table  # marked shown, shadow left out by default


def test_entries_not_in_the_service_form_are_skipped_and_counted(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    log_entry(client, "good", "v1", [0.6])
    client.xadd(STREAM, {"request_id": "x", "probability": "not json"})
    client.xadd(STREAM, {"something": "else"})
    result = ok("export", "--redis-url", redis_server.url)
    assert [r["request_id"] for r in jsonl(result.stdout)] == ["good"]
    assert "2 entries skipped: not in the form the service writes" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "--since 'yesterday': expected an ISO 8601 time"),
        (("--since", "1h", "--until", "2h"), "--since is later than --until"),
        (("--model-version", "v1;rm"), "--model-version 'v1;rm': expected letters"),
        (("--stream", "no:such:stream"), "stream 'no:such:stream' does not exist"),
        (("--timeout", "0"), "--timeout 0.0: must be more than 0"),
    ],
)
def test_bad_selection_names_the_option_and_the_problem(
    redis_server: RedisServer, args: tuple[str, ...], message: str
) -> None:
    log_entry(redis.Redis.from_url(redis_server.url), "a", "v1", [0.5])
    result = predictions("export", "--redis-url", redis_server.url, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_key_that_is_not_a_stream_is_refused(redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).set("nepse:oops", "1")
    result = predictions("list", "--redis-url", redis_server.url, "--stream", "nepse:oops")
    assert (
        result.returncode == 2 and "'nepse:oops' is a Redis string, not a stream" in result.stderr
    )


def test_without_a_redis_url_the_error_says_where_to_give_one() -> None:
    result = predictions("stats")
    assert result.returncode == 2
    assert "pass --redis-url or set NEPSE_REDIS_URL" in result.stderr


def test_export_with_redis_down_fails_clearly_and_writes_no_file(tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = predictions("export", "--redis-url", url, "--out", str(out))
    assert result.returncode == 2
    assert f"Redis at {url} failed while reading the prediction log" in result.stderr
    assert "Connection refused" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_export_into_a_missing_folder_names_it(redis_server: RedisServer, tmp_path: Path) -> None:
    result = predictions(
        "export", "--redis-url", redis_server.url, "--out", str(tmp_path / "no" / "x.csv")
    )
    assert result.returncode == 2 and f"folder {tmp_path / 'no'} does not exist" in result.stderr


def test_a_password_in_the_url_is_not_printed() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    result = predictions("list", "--redis-url", url)
    assert result.returncode == 2 and "s3cret" not in result.stderr and "***@" in result.stderr
