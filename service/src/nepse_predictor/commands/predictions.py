"""`nepse-predictor predictions`: read, export and void-mark the prediction log.

  predictions list    the newest selected entries as a table (-o json for CI)
  predictions export  every selected entry as JSON Lines or CSV (--out FILE; default stdout)
  predictions stats   per model version and track: entries, rows, label shares, first/last seen
  predictions mark    record that a model version's predictions are void (idempotent)
  predictions unmark  withdraw that record (the events stream keeps both)
  predictions marks   the versions marked void, with who, when and why

Selection (list, export, stats): --model-version, --track and --request-id (each repeatable),
--since and --until, --marked exclude|include|only. Shadow answers are left out unless
--track shadow names them; what was left out is counted on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import socket
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nepse_predictor.errors import UserError
from nepse_predictor.prediction_log import DEFAULT_STREAM
from nepse_predictor.tracks import TRACKS

MODEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
MAX_REASON = 1000


@dataclass(frozen=True)
class LogTarget:
    """Where the log is: shared by every sub-command."""

    redis_url: str
    stream: str
    timeout: float


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("NEPSE_REDIS_URL"),
        help="e.g. redis://127.0.0.1:6379/0 (default: $NEPSE_REDIS_URL)",
    )
    parser.add_argument(
        "--stream",
        default=os.environ.get("NEPSE_PREDICTION_STREAM") or DEFAULT_STREAM,
        help=f"the prediction stream (default: $NEPSE_PREDICTION_STREAM or {DEFAULT_STREAM})",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for Redis (default 5)"
    )


def _add_selection(parser: argparse.ArgumentParser, marked_default: str) -> None:
    g = parser.add_argument_group("which entries")
    g.add_argument("--model-version", action="append", default=[], help="repeatable")
    g.add_argument(
        "--track",
        action="append",
        default=[],
        choices=TRACKS,
        help="repeatable (default: every track but shadow)",
    )
    g.add_argument("--request-id", action="append", default=[], help="repeatable")
    g.add_argument("--since", help="ISO 8601 time, Unix seconds, or an age such as 2h")
    g.add_argument("--until", help="ISO 8601 time, Unix seconds, or an age such as 30m")
    g.add_argument(
        "--marked",
        choices=("exclude", "include", "only"),
        default=marked_default,
        help=f"entries of void-marked versions (default {marked_default})",
    )


def _add_change(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-version", required=True)
    parser.add_argument("--reason", required=True, help="why; kept with the record")
    parser.add_argument("--by", help="who (default: user@host)")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0]
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser("list", help="the newest selected entries")
    _add_target(p)
    _add_selection(p, "exclude")
    p.add_argument("--limit", type=int, default=20, help="newest entries shown (default 20)")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(handler=run_list)

    p = sub.add_parser("export", help="every selected entry as JSON Lines or CSV")
    _add_target(p)
    _add_selection(p, "exclude")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--out", default="-", help="file to write (default: stdout)")
    p.set_defaults(handler=run_export)

    p = sub.add_parser("stats", help="per model version and track")
    _add_target(p)
    _add_selection(p, "include")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(handler=run_stats)

    p = sub.add_parser("mark", help="record that a model version's predictions are void")
    _add_target(p)
    _add_change(p)
    p.set_defaults(handler=run_mark)

    p = sub.add_parser("unmark", help="withdraw a version's void marker")
    _add_target(p)
    _add_change(p)
    p.set_defaults(handler=run_unmark)

    p = sub.add_parser("marks", help="the versions marked void")
    _add_target(p)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(handler=run_marks)


# --- validation ----------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> LogTarget:
    if not args.redis_url:
        raise UserError("no Redis to read: pass --redis-url or set NEPSE_REDIS_URL")
    if not 0 < args.timeout <= 300:
        raise UserError(f"--timeout {args.timeout}: must be more than 0 and at most 300 seconds")
    if not args.stream.strip():
        raise UserError("--stream: must not be empty")
    return LogTarget(args.redis_url.strip(), args.stream, args.timeout)


def _model_version(value: str) -> str:
    if not MODEL_VERSION.fullmatch(value):
        raise UserError(
            f"--model-version {value!r}: expected letters, digits, '.', '_', '+' or '-' "
            "(at most 128, starting with a letter or digit)"
        )
    return value


def _reason(value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise UserError("--reason: must say why (it is kept with the record)")
    if len(text) > MAX_REASON:
        raise UserError(f"--reason: {len(text)} characters; at most {MAX_REASON}")
    return text


def _by(value: str | None) -> str:
    if value is not None:
        text = " ".join(value.split())
        if not text or len(text) > 200:
            raise UserError("--by: must name someone, in at most 200 characters")
        return text
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _selection(args: argparse.Namespace) -> Any:
    from nepse_predictor.prediction_log import Selection
    from nepse_predictor.time_bounds import parse_time

    return Selection(
        model_versions=frozenset(_model_version(v) for v in args.model_version),
        tracks=frozenset(args.track),
        request_ids=frozenset(args.request_id),
        since=parse_time("--since", args.since) if args.since else None,
        until=parse_time("--until", args.until) if args.until else None,
        marked=args.marked,
    )


# --- reading -------------------------------------------------------------------------------


def _read(args: argparse.Namespace, consume: Any) -> Any:
    """Run `consume(entries, marks)` over the selected entries; notes go to stderr."""
    from nepse_predictor.log_redis import connection, failures_explained
    from nepse_predictor.prediction_log import Tally, read_entries
    from nepse_predictor.void_marks import read_marks

    target = _target(args)
    selection = _selection(args)
    tally = Tally()
    with (
        connection(target.redis_url, target.timeout) as client,
        failures_explained(target.redis_url, "reading the prediction log", target.timeout),
    ):
        marks = read_marks(client, target.stream)
        entries = read_entries(client, target.stream, selection, frozenset(marks), tally)
        result = consume(entries, marks)
    for note in tally.notes():
        print(f"note: {note}", file=sys.stderr)
    return result


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _show(
    output: str,
    key: str,
    items: list[dict[str, Any]],
    header: list[str],
    row: Callable[[dict[str, Any]], list[str]],
) -> int:
    """`{key: items}` as JSON with `-o json`, else a table of one `row` per item."""
    if output == "json":
        print(json.dumps({key: items}, indent=2))
    elif not items:
        print("no entries selected")
    else:
        print(_table(header, [row(item) for item in items]))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from nepse_predictor.log_export import record

    if args.limit < 1:
        raise UserError(f"--limit {args.limit}: must be at least 1")
    newest = _read(
        args,
        lambda entries, marks: [record(e, marks) for e in deque(entries, maxlen=args.limit)],
    )
    header = ["time", "request id", "track", "version", "rows", "P(up)", ""]
    return _show(
        args.output,
        "entries",
        newest,
        header,
        lambda r: [
            r["time"],
            r["request_id"],
            r["track"],
            r["model_version"],
            str(r["rows"]),
            ", ".join(f"{p:.3f}" for p in r["probabilities"][:3])
            + (" ..." if r["rows"] > 3 else ""),
            "VOID" if r["void"] else "",
        ],
    )


def run_export(args: argparse.Namespace) -> int:
    from nepse_predictor.log_export import destination, record, write

    _target(args)  # refuse bad options before a file is opened
    with destination(args.out) as out:
        count = _read(
            args,
            lambda entries, marks: write((record(e, marks) for e in entries), out, args.format),
        )
    where = "stdout" if args.out == "-" else args.out
    print(f"exported {count} entries as {args.format} to {where}", file=sys.stderr)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from nepse_predictor.prediction_log import stats_by_version
    from nepse_predictor.time_bounds import iso_utc

    def summarize(entries: Any, marks: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for line in stats_by_version(entries):
            mark = marks.get(line.model_version)
            up = line.up_share
            out.append(
                {
                    "model_version": line.model_version,
                    "track": line.track,
                    "entries": line.entries,
                    "rows": line.rows,
                    "up_share": up,
                    "down_share": None if up is None else 1 - up,
                    "first_seen": iso_utc(line.first_ts) if line.first_ts else None,
                    "last_seen": iso_utc(line.last_ts) if line.last_ts else None,
                    "mean_latency_ms": line.mean_latency_ms,
                    "void": mark is not None,
                    "void_reason": mark.reason if mark else None,
                }
            )
        return out

    header = ["version", "track", "entries", "rows", "up", "down", "first seen", "last seen", ""]
    return _show(
        args.output,
        "versions",
        _read(args, summarize),
        header,
        lambda v: [
            v["model_version"],
            v["track"],
            str(v["entries"]),
            str(v["rows"]),
            "n/a" if v["up_share"] is None else f"{v['up_share']:.3f}",
            "n/a" if v["down_share"] is None else f"{v['down_share']:.3f}",
            v["first_seen"] or "",
            v["last_seen"] or "",
            "VOID" if v["void"] else "",
        ],
    )


# --- marking -------------------------------------------------------------------------------


def _change(args: argparse.Namespace, action: str) -> int:
    from redis.exceptions import RedisError

    from nepse_predictor.log_redis import connection, redact_url
    from nepse_predictor.void_marks import deadline_after, mark, marks_key, unmark

    target = _target(args)
    version = _model_version(args.model_version)
    reason, by = _reason(args.reason), _by(args.by)
    where = f"Redis at {redact_url(target.redis_url)}"
    verb = "marking" if action == "mark" else "unmarking"
    with connection(target.redis_url, target.timeout) as client:
        try:
            deadline = deadline_after(client, target.timeout)
        except RedisError as exc:
            raise UserError(
                f"{where} is unreachable ({type(exc).__name__}: {exc}); {verb} {version} "
                "changed nothing. Run it again when Redis answers"
            ) from None
        apply = mark if action == "mark" else unmark
        try:
            change = apply(client, target.stream, version, reason, by, deadline)
        except RedisError as exc:
            raise UserError(
                f"{where} did not confirm {verb} {version} ({type(exc).__name__}: {exc}). "
                f"Redis refuses the change once {target.timeout:g} s have passed, so it holds "
                f"only if it arrived in time: `nepse-predictor predictions marks` shows which; "
                f"running {action} again is safe"
            ) from None
    if change.outcome == "late":
        raise UserError(
            f"{where} took longer than {target.timeout:g} s to run the {action} of {version}, "
            "so it refused it: nothing was changed. Run it again (or raise --timeout)"
        )
    result = {
        "action": action,
        "model_version": version,
        "changed": change.outcome != "unchanged",
        "marker": None if change.mark is None else change.mark.__dict__,
        "key": marks_key(target.stream),
    }
    if args.output == "json":
        print(json.dumps(result, indent=2))
        return 0
    marker = change.mark
    if change.outcome == "marked" and marker:
        print(
            f"marked model version {version} void in {result['key']}: {marker.reason} "
            f"(by {marker.marked_by} at {marker.marked_at})"
        )
    elif change.outcome == "unmarked" and marker:
        print(
            f"unmarked model version {version}: its predictions count again (it was marked by "
            f"{marker.marked_by} at {marker.marked_at}: {marker.reason})"
        )
    elif action == "mark" and marker:
        print(
            f"model version {version} was already marked void by {marker.marked_by} at "
            f"{marker.marked_at} ({marker.reason}); nothing changed"
        )
    else:
        print(f"model version {version} is not marked void; nothing changed")
    return 0


def run_mark(args: argparse.Namespace) -> int:
    return _change(args, "mark")


def run_unmark(args: argparse.Namespace) -> int:
    return _change(args, "unmark")


def run_marks(args: argparse.Namespace) -> int:
    from nepse_predictor.log_redis import connection, failures_explained
    from nepse_predictor.void_marks import read_marks

    target = _target(args)
    with (
        connection(target.redis_url, target.timeout) as client,
        failures_explained(target.redis_url, "reading the void markers", target.timeout),
    ):
        marks = read_marks(client, target.stream)
    ordered = sorted(marks.values(), key=lambda m: (m.marked_at, m.model_version))
    if args.output == "json":
        print(json.dumps({"marks": [m.__dict__ for m in ordered]}, indent=2))
        return 0
    if not ordered:
        print("no model version is marked void")
        return 0
    rows = [[m.model_version, m.marked_at, m.marked_by, m.reason] for m in ordered]
    print(_table(["version", "marked at", "by", "reason"], rows))
    return 0
