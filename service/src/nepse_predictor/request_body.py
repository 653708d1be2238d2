"""Reading a request body from ASGI: a size limit, a time limit and content codings.

A `Content-Encoding: gzip` or `deflate` body (tritonclient's request compression) is
decompressed with the same limit as a plain body: decompression stops one byte past the limit,
so a small bomb costs no more than a body of the largest allowed size. Any other coding but
`identity` is refused with 415.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import Receive

# zlib window bits: a gzip member, or a zlib stream ("deflate" as HTTP means it).
_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
CONTENT_CODINGS = ("gzip", "deflate", "identity")


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


class ClientGone(Exception):
    pass


class BadEncoding(Exception):
    """A body that cannot be decoded; `status` is 415 (unknown coding) or 400 (corrupt)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = "content-encoding" if status == 415 else "body"


async def _receive_all(receive: Receive, limit: int) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_body(
    receive: Receive, declared: int | None, limit: int, timeout: float, received: bool = False
) -> bytes:
    """The whole body, at most `limit` bytes, all of it within `timeout` seconds (unless it
    has all been ``received`` already)."""
    if declared is not None and declared > limit:
        raise BodyTooLarge
    if received:
        return await _receive_all(receive, limit)
    try:
        async with asyncio.timeout(timeout):
            return await _receive_all(receive, limit)
    except TimeoutError:
        raise BodyTimeout from None


def coding_of(header: bytes) -> str:
    """The one content coding a Content-Encoding header names, checked; "" for identity."""
    coding = header.strip().lower().decode("latin-1")
    if coding in ("", "identity"):
        return ""
    if coding not in CONTENT_CODINGS:
        raise BadEncoding(
            415,
            f"content-encoding: {coding[:40]!r} is not supported; send gzip, deflate or an "
            "uncompressed body",
        )
    return coding


def decode_body(body: bytes, coding: str, limit: int) -> bytes:
    """`body` decompressed per `coding` (from `coding_of`), at most `limit` bytes of it."""
    if not coding:
        return body
    if coding == "gzip":
        return _inflate(body, _GZIP, coding, limit)
    try:
        return _inflate(body, _ZLIB, coding, limit)
    except BadEncoding:
        # Some clients send a raw deflate stream without the zlib wrapper.
        return _inflate(body, _RAW_DEFLATE, coding, limit)


def _inflate(body: bytes, wbits: int, coding: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadEncoding(400, f"body: not valid {coding} data ({exc})") from None
    if len(out) > limit:
        raise BodyTooLarge
    if not inflater.eof:
        raise BadEncoding(400, f"body: the {coding} data is truncated")
    return out
