"""Read the prediction log: the capped Redis stream every server appends one entry per request to.

An entry (written by `cache.RedisSink.log_prediction`) holds request_id, track, model_version,
route, rows, probability (a JSON list of P(up), one per row), latency_ms, ts (the serving
process's clock, Unix seconds) and, with NEPSE_LOG_FEATURES on, features. A shadow server runs
with NEPSE_TRACK=shadow, so its answers carry track ``shadow``; a selection leaves them out
unless it names that track.

Reading never changes the log. Entries this code cannot read (written by something else, or
cut short) are counted and skipped, never fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import orjson
from redis.exceptions import ResponseError

from nepse_predictor.errors import UserError

if TYPE_CHECKING:
    from nepse_predictor.log_redis import BytesRedis

DEFAULT_STREAM = "nepse:predictions"
SHADOW = "shadow"
LABEL_THRESHOLD = 0.5
PAGE = 1000

MarkedPolicy = Literal["exclude", "include", "only"]


@dataclass(frozen=True)
class LogEntry:
    entry_id: str
    ts: float
    request_id: str
    track: str
    model_version: str
    route: str
    probabilities: tuple[float, ...]
    latency_ms: float
    features: object | None = None

    @property
    def labels(self) -> list[str]:
        return ["up" if p >= LABEL_THRESHOLD else "down" for p in self.probabilities]


def parse_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> LogEntry | None:
    """The entry, or None when a field is missing or not what the service writes."""
    text = {k.decode(errors="replace"): v for k, v in fields.items()}
    try:
        probabilities = tuple(float(p) for p in orjson.loads(text["probability"]))
        features = orjson.loads(text["features"]) if "features" in text else None
        return LogEntry(
            entry_id=entry_id.decode(),
            ts=float(text["ts"]),
            request_id=text["request_id"].decode(errors="replace"),
            track=text["track"].decode(errors="replace"),
            model_version=text["model_version"].decode(errors="replace"),
            route=text.get("route", b"").decode(errors="replace"),
            probabilities=probabilities,
            latency_ms=float(text["latency_ms"]),
            features=features,
        )
    except (KeyError, ValueError, TypeError, orjson.JSONDecodeError):
        return None


@dataclass(frozen=True)
class Selection:
    """Which entries a command works on. Empty sets select everything (but shadow answers)."""

    model_versions: frozenset[str] = frozenset()
    tracks: frozenset[str] = frozenset()
    request_ids: frozenset[str] = frozenset()
    since: float | None = None
    until: float | None = None
    marked: MarkedPolicy = "exclude"

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise UserError("--since is later than --until: the time range selects nothing")

    def wants_track(self, track: str) -> bool:
        return track in self.tracks if self.tracks else track != SHADOW


@dataclass
class Tally:
    """What a read left out, and why: ``shadow``, ``marked``, ``unreadable``."""

    left_out: Counter[str] = field(default_factory=Counter)

    def notes(self) -> list[str]:
        hints = {
            SHADOW: "shadow answers left out (--track shadow selects them)",
            "marked": "entries of void-marked versions left out (--marked include keeps them)",
            "unreadable": "entries skipped: not in the form the service writes",
        }
        return [f"{self.left_out[k]} {hints[k]}" for k in hints if self.left_out[k]]


def stream_exists(client: BytesRedis, stream: str) -> None:
    """Refuse a stream that is missing or another type of key (a typo would read nothing)."""
    kind = client.type(stream).decode()
    if kind == "none":
        raise UserError(
            f"stream {stream!r} does not exist: nothing has been logged there (check --stream "
            "and --redis-url)"
        )
    if kind != "stream":
        raise UserError(f"{stream!r} is a Redis {kind}, not a stream; check --stream")


def read_entries(
    client: BytesRedis,
    stream: str,
    selection: Selection,
    void_versions: set[str] | frozenset[str],
    tally: Tally,
) -> Iterator[LogEntry]:
    """The selected entries, oldest first, read in pages of `PAGE`."""
    stream_exists(client, stream)
    # A time range is matched on `ts` (the answering server's clock), not on entry ids
    # (Redis's clock): a server whose clock is off must not lose entries from a selection.
    low = "-"
    while True:
        try:
            page = client.xrange(stream, min=low, max="+", count=PAGE)
        except ResponseError as exc:
            raise UserError(f"cannot read stream {stream!r}: {exc}") from None
        if not page:
            return
        for entry_id, fields in page:
            entry = parse_entry(entry_id, fields)
            if entry is None:
                tally.left_out["unreadable"] += 1
            elif _selected(entry, selection, void_versions, tally):
                yield entry
        low = f"({page[-1][0].decode()}"
        if len(page) < PAGE:
            return


def _selected(
    entry: LogEntry, sel: Selection, void_versions: set[str] | frozenset[str], tally: Tally
) -> bool:
    if sel.model_versions and entry.model_version not in sel.model_versions:
        return False
    if sel.request_ids and entry.request_id not in sel.request_ids:
        return False
    if sel.since is not None and entry.ts < sel.since:
        return False
    if sel.until is not None and entry.ts > sel.until:
        return False
    if not sel.wants_track(entry.track):
        tally.left_out[SHADOW] += 1
        return False
    void = entry.model_version in void_versions
    if sel.marked == "exclude" and void:
        tally.left_out["marked"] += 1
        return False
    return void or sel.marked != "only"


@dataclass
class VersionStats:
    model_version: str
    track: str
    entries: int = 0
    rows: int = 0
    up_rows: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    latency_total_ms: float = 0.0

    def add(self, entry: LogEntry) -> None:
        self.entries += 1
        self.rows += len(entry.probabilities)
        self.up_rows += sum(1 for p in entry.probabilities if p >= LABEL_THRESHOLD)
        self.latency_total_ms += entry.latency_ms
        self.first_ts = entry.ts if self.first_ts is None else min(self.first_ts, entry.ts)
        self.last_ts = entry.ts if self.last_ts is None else max(self.last_ts, entry.ts)

    @property
    def up_share(self) -> float | None:
        return self.up_rows / self.rows if self.rows else None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_total_ms / self.entries if self.entries else None


def stats_by_version(entries: Iterator[LogEntry]) -> list[VersionStats]:
    """One line per (model version, track), oldest first seen first."""
    lines: dict[tuple[str, str], VersionStats] = {}
    for entry in entries:
        key = (entry.model_version, entry.track)
        line = lines.get(key)
        if line is None:
            line = lines[key] = VersionStats(entry.model_version, entry.track)
        line.add(entry)
    return sorted(lines.values(), key=lambda s: (s.first_ts or 0.0, s.model_version, s.track))
