"""The Redis connection of the prediction-log commands, and their failures in plain words."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol, cast

from redis import Redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from nepse_predictor.errors import UserError

URL_SCHEMES = ("redis://", "rediss://", "unix://")

StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


class BytesRedis(Protocol):
    """The commands the prediction-log code sends, on a client made with
    decode_responses=False (`bytes_client`): every reply holds bytes. redis-py types its
    replies for either setting (`bytes | str`); this is the one setting used here."""

    def type(self, name: str) -> bytes: ...

    def exists(self, *names: str) -> int: ...

    def hgetall(self, name: str) -> dict[bytes, bytes]: ...

    def xrange(
        self, name: str, min: str = "-", max: str = "+", count: int | None = None
    ) -> StreamEntries: ...

    def xrevrange(
        self, name: str, max: str = "+", min: str = "-", count: int | None = None
    ) -> StreamEntries: ...

    def time(self) -> tuple[int, int]: ...

    def register_script(self, script: str) -> Script: ...

    def close(self) -> None: ...


def bytes_client(url: str, **options: Any) -> BytesRedis:
    """`Redis.from_url(url, **options)` with replies as bytes."""
    return cast(BytesRedis, Redis.from_url(url, decode_responses=False, **options))


def redact_url(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


@contextlib.contextmanager
def connection(url: str, timeout_seconds: float) -> Iterator[BytesRedis]:
    """A client that gives up after `timeout_seconds` and never retries behind the caller."""
    if not url.startswith(URL_SCHEMES):
        raise UserError(
            f"--redis-url {redact_url(url)!r}: must be a redis://, rediss:// or unix:// URL"
        )
    try:
        client = bytes_client(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise UserError(f"--redis-url {redact_url(url)!r}: {exc}") from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()


@contextlib.contextmanager
def failures_explained(url: str, action: str, timeout_seconds: float) -> Iterator[None]:
    """Turn a Redis failure into one line naming the server, the action and the cause."""
    try:
        yield
    except RedisTimeoutError:
        raise UserError(
            f"Redis at {redact_url(url)} did not answer within {timeout_seconds:g} s while {action}"
        ) from None
    except RedisError as exc:
        raise UserError(f"Redis at {redact_url(url)} failed while {action}: {exc}") from None
