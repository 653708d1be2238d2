"""Void markers: a record, beside the prediction log, that a model version's predictions are void.

The log itself is never rewritten. Marking a version adds one field to a Redis hash,

    <stream>:void          model version -> {"model_version", "reason", "marked_by",
                                              "marked_at"} as JSON

so a consumer checks a prediction with ``HEXISTS nepse:predictions:void <model_version>``.
Every change is also appended to ``<stream>:void:events`` (action ``mark`` or ``unmark``, with
the marker and, for unmark, who undid it and why): unmarking removes the field, not the record
that it was there.

Both changes are one Lua script each, so they are atomic and idempotent: marking a marked
version (or unmarking an unmarked one) changes nothing and says so; the first marker's who,
when and why stay. ``marked_at`` is Redis's clock.

A change carries a deadline on Redis's clock (its TIME when the command starts, plus the
client's timeout). A script that reaches Redis after the client has given up (a frozen or
overloaded server, a slow network) finds its deadline passed and does nothing, so "Redis did
not answer" always means "nothing was changed".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal, get_args

import orjson

from nepse_predictor.time_bounds import iso_utc

if TYPE_CHECKING:
    from nepse_predictor.log_redis import BytesRedis

EVENTS_MAXLEN = 10_000

Outcome = Literal["marked", "unmarked", "unchanged", "late"]
_OUTCOMES: dict[str, Outcome] = {name: name for name in get_args(Outcome)}

# Both scripts start so: a change that reaches Redis after its deadline (ARGV[3], ms on Redis's
# clock) does nothing; then the version's marker, if any, is read.
_ON_TIME = """
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[3]) then
  return {'late', false}
end
local existing = redis.call('HGET', KEYS[1], ARGV[1])
"""

_MARK = (
    _ON_TIME
    + """if existing then
  return {'unchanged', existing}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'action', 'mark', 'model_version', ARGV[1], 'marker', ARGV[2])
return {'marked', ARGV[2]}
"""
)

_UNMARK = (
    _ON_TIME
    + """if not existing then
  return {'unchanged', false}
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'action', 'unmark', 'model_version', ARGV[1], 'marker', existing, 'unmark', ARGV[2])
return {'unmarked', existing}
"""
)


def marks_key(stream: str) -> str:
    return f"{stream}:void"


def events_key(stream: str) -> str:
    return f"{stream}:void:events"


@dataclass(frozen=True)
class VoidMark:
    model_version: str
    reason: str
    marked_by: str
    marked_at: str

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, model_version: str, raw: bytes) -> VoidMark:
        """The stored marker; one this code cannot read still marks its version void."""
        try:
            data = orjson.loads(raw)
            return cls(
                model_version,
                str(data["reason"]),
                str(data["marked_by"]),
                str(data["marked_at"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            text = raw.decode(errors="replace")
            return cls(model_version, f"(marker not in the expected form: {text[:200]})", "?", "?")


@dataclass(frozen=True)
class Change:
    outcome: Outcome
    mark: VoidMark | None


def read_marks(client: BytesRedis, stream: str) -> dict[str, VoidMark]:
    raw = client.hgetall(marks_key(stream))
    marks = {}
    for version, value in raw.items():
        name = version.decode(errors="replace")
        marks[name] = VoidMark.from_json(name, value)
    return marks


@dataclass(frozen=True)
class Deadline:
    """Redis's clock when a change starts, and the moment after which Redis refuses it."""

    now_ms: int
    until_ms: int


def deadline_after(client: BytesRedis, timeout_seconds: float) -> Deadline:
    seconds, micros = client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    return Deadline(now_ms, now_ms + int(timeout_seconds * 1000))


def _changed(reply: list[object], version: str) -> Change:
    outcome = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    raw = reply[1] if len(reply) > 1 else None
    mark = VoidMark.from_json(version, raw) if isinstance(raw, bytes) else None
    return Change(_OUTCOMES[outcome], mark)


def mark(
    client: BytesRedis, stream: str, version: str, reason: str, by: str, deadline: Deadline
) -> Change:
    marker = VoidMark(version, reason, by, iso_utc(deadline.now_ms / 1000))
    reply = client.register_script(_MARK)(
        keys=[marks_key(stream), events_key(stream)],
        args=[version, marker.to_json(), deadline.until_ms, EVENTS_MAXLEN],
    )
    return _changed(reply, version)


def unmark(
    client: BytesRedis, stream: str, version: str, reason: str, by: str, deadline: Deadline
) -> Change:
    undo = orjson.dumps(
        {"reason": reason, "unmarked_by": by, "unmarked_at": iso_utc(deadline.now_ms / 1000)},
        option=orjson.OPT_SORT_KEYS,
    )
    reply = client.register_script(_UNMARK)(
        keys=[marks_key(stream), events_key(stream)],
        args=[version, undo, deadline.until_ms, EVENTS_MAXLEN],
    )
    return _changed(reply, version)
