"""`nepse-predictor predictions mark|unmark|marks`: void markers beside the prediction log, on a
real redis-server: idempotent, never rewriting the log, kept across restarts, and all or
nothing when Redis fails."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import orjson
import pytest
import redis
from predictions_kit import (
    STREAM,
    compose_redis_persistence,
    log_entry,
    ok,
    predictions,
    snapshot,
)
from serving_kit import RedisServer

from nepse_predictor import void_marks


def two_versions_logged(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)
    for i in range(5):
        log_entry(client, f"a{i}", "v1", [0.6])
        log_entry(client, f"b{i}", "v2", [0.3], track="canary")
    return client


def test_mark_records_who_when_and_why_without_touching_the_log(
    redis_server: RedisServer,
) -> None:
    client = two_versions_logged(redis_server.url)
    log_before = client.xrange(STREAM)
    result = ok(
        "mark",
        "--redis-url",
        redis_server.url,
        "--model-version",
        "v2",
        "--reason",
        "gate failed: error ratio 0.3",
        "--by",
        "oncall@example",
        "-o",
        "json",
    )
    answer = orjson.loads(result.stdout)
    assert answer["changed"] is True and answer["key"] == "nepse:predictions:void"
    marker = orjson.loads(client.hget("nepse:predictions:void", "v2"))
    assert marker["reason"] == "gate failed: error ratio 0.3"
    assert marker["marked_by"] == "oncall@example" and marker["model_version"] == "v2"
    marked_at = dt.datetime.fromisoformat(marker["marked_at"].replace("Z", "+00:00"))
    assert abs(marked_at.timestamp() - client.time()[0]) < 5  # Redis's clock
    assert client.hexists("nepse:predictions:void", "v2")  # what a consumer checks
    assert not client.hexists("nepse:predictions:void", "v1")
    assert client.xrange(STREAM) == log_before
    [(_, event)] = client.xrange("nepse:predictions:void:events")
    assert event[b"action"] == b"mark" and event[b"model_version"] == b"v2"


def test_marking_twice_changes_nothing_and_keeps_the_first_record(
    redis_server: RedisServer,
) -> None:
    client = two_versions_logged(redis_server.url)
    ok("mark", "--redis-url", redis_server.url, "--model-version", "v2", "--reason", "first")
    before = snapshot(client)
    again = ok("mark", "--redis-url", redis_server.url, "--model-version", "v2", "--reason", "2nd")
    assert "was already marked void" in again.stdout and "(first); nothing changed" in again.stdout
    assert snapshot(client) == before
    as_json = orjson.loads(
        ok(
            "mark",
            "--redis-url",
            redis_server.url,
            "--model-version",
            "v2",
            "--reason",
            "x",
            "-o",
            "json",
        ).stdout
    )
    assert as_json["changed"] is False and as_json["marker"]["reason"] == "first"
    assert snapshot(client) == before


def test_unmark_removes_the_marker_and_the_events_keep_both(redis_server: RedisServer) -> None:
    client = two_versions_logged(redis_server.url)
    ok("mark", "--redis-url", redis_server.url, "--model-version", "v2", "--reason", "suspect")
    result = ok(
        "unmark",
        "--redis-url",
        redis_server.url,
        "--model-version",
        "v2",
        "--reason",
        "false alarm",
        "--by",
        "lead",
    )
    assert "its predictions count again" in result.stdout
    assert not client.hexists("nepse:predictions:void", "v2")
    events = [fields for _, fields in client.xrange("nepse:predictions:void:events")]
    assert [e[b"action"] for e in events] == [b"mark", b"unmark"]
    undo = orjson.loads(events[1][b"unmark"])
    assert undo["reason"] == "false alarm" and undo["unmarked_by"] == "lead"
    assert orjson.loads(events[1][b"marker"])["reason"] == "suspect"

    before = snapshot(client)
    again = ok("unmark", "--redis-url", redis_server.url, "--model-version", "v2", "--reason", "x")
    assert "is not marked void; nothing changed" in again.stdout
    assert snapshot(client) == before


def test_marks_lists_every_marked_version(redis_server: RedisServer) -> None:
    for version in ("v3", "v1"):
        ok("mark", "--redis-url", redis_server.url, "--model-version", version, "--reason", "bad")
    listed = orjson.loads(ok("marks", "--redis-url", redis_server.url, "-o", "json").stdout)
    assert [m["model_version"] for m in listed["marks"]] == ["v3", "v1"]  # in marking order
    assert (
        "no model version is marked void"
        in ok("marks", "--redis-url", redis_server.url, "--stream", "other").stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model-version", "", "--reason", "x"), "--model-version '': expected letters"),
        (("--model-version", "v1", "--reason", "  \n "), "--reason: must say why"),
        (("--model-version", "v1", "--reason", "x" * 1001), "--reason: 1001 characters"),
        (("--model-version", "v1", "--reason", "x", "--by", " "), "--by: must name someone"),
    ],
)
def test_bad_mark_options_are_refused_before_redis_is_touched(
    redis_server: RedisServer, args: tuple[str, ...], message: str
) -> None:
    result = predictions("mark", "--redis-url", redis_server.url, *args)
    assert result.returncode == 2 and message in result.stderr
    assert redis.Redis.from_url(redis_server.url).keys("*") == []


def test_compose_persistence_keeps_log_and_markers_across_a_redis_restart(
    tmp_path: Path,
) -> None:
    options = compose_redis_persistence()
    assert "--appendonly" in options and options[options.index("--appendonly") + 1] == "yes"
    server = RedisServer(tmp_path, persistence=options)
    try:
        client = two_versions_logged(server.url)
        ok("mark", "--redis-url", server.url, "--model-version", "v2", "--reason", "bad")
        before = snapshot(client)
        server.restart()
        after = snapshot(redis.Redis.from_url(server.url))
        assert after == before and len(after["log"]) == 10 and after["marks"]
        assert (tmp_path / "appendonlydir").is_dir()
        export = predictions("export", "--redis-url", server.url)
        assert export.returncode == 0 and export.stdout.count("\n") == 5  # v1 only: v2 is void
    finally:
        server.kill()


def test_without_persistence_a_restart_loses_the_log(redis_server: RedisServer) -> None:
    # The control for the test above: its restart is a real one.
    client = two_versions_logged(redis_server.url)
    assert client.xlen(STREAM) == 10
    redis_server.restart()
    assert redis.Redis.from_url(redis_server.url).exists(STREAM) == 0


def test_mark_while_redis_is_down_fails_clearly_and_changes_nothing(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    redis_server.kill()
    result = predictions("mark", "--redis-url", url, "--model-version", "v2", "--reason", "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"Redis at {url} is unreachable" in result.stderr
    assert "marking v2 changed nothing" in result.stderr


def test_mark_while_redis_is_frozen_times_out_and_changes_nothing(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path, persistence=compose_redis_persistence())
    try:
        client = two_versions_logged(server.url)
        before = snapshot(client)
        server.pause()
        try:
            started = time.monotonic()
            result = predictions(
                "mark",
                "--redis-url",
                server.url,
                "--model-version",
                "v2",
                "--reason",
                "x",
                "--timeout",
                "0.5",
            )
            assert time.monotonic() - started < 10
        finally:
            server.resume()
        assert result.returncode == 2, result.stdout
        assert "is unreachable" in result.stderr and "changed nothing" in result.stderr
        time.sleep(0.5)
        server.restart()
        assert snapshot(redis.Redis.from_url(server.url)) == before
    finally:
        server.kill()


def test_mark_held_up_inside_redis_past_its_timeout_changes_nothing(
    redis_server: RedisServer,
) -> None:
    # CLIENT PAUSE WRITE answers TIME but holds every script: the mark is sent, then waits.
    client = two_versions_logged(redis_server.url)
    before = snapshot(client)
    client.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
    result = predictions(
        "mark",
        "--redis-url",
        redis_server.url,
        "--model-version",
        "v2",
        "--reason",
        "x",
        "--timeout",
        "1",
    )
    assert result.returncode == 2
    assert "did not confirm marking v2" in result.stderr
    assert "predictions marks` shows which" in result.stderr
    time.sleep(2.5)  # the pause is over; whatever Redis does with the script has happened
    assert snapshot(client) == before


def test_a_mark_reaching_redis_after_its_deadline_is_refused(redis_server: RedisServer) -> None:
    client = two_versions_logged(redis_server.url)
    before = snapshot(client)
    deadline = void_marks.deadline_after(client, timeout_seconds=0.05)
    time.sleep(0.2)
    change = void_marks.mark(client, STREAM, "v2", "late", "test", deadline)
    assert change.outcome == "late" and change.mark is None
    assert snapshot(client) == before
    on_time = void_marks.mark(
        client, STREAM, "v2", "on time", "test", void_marks.deadline_after(client, 5)
    )
    assert on_time.outcome == "marked"


def test_concurrent_marks_of_one_version_leave_one_record(redis_server: RedisServer) -> None:
    client = two_versions_logged(redis_server.url)
    outcomes: list[str] = []

    def mark(reason: str) -> None:
        local = redis.Redis.from_url(redis_server.url)
        deadline = void_marks.deadline_after(local, 5)
        outcomes.append(void_marks.mark(local, STREAM, "v2", reason, "t", deadline).outcome)

    threads = [threading.Thread(target=mark, args=(f"r{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["marked"] + ["unchanged"] * 7
    assert client.xlen("nepse:predictions:void:events") == 1
