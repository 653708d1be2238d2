"""A reader of Universal Binary JSON (ubjson.org), the format of XGBoost's model.ubj.

Only reading, and only what a well-formed file holds: every length is checked against the
bytes that are left, nesting is bounded, and typed numeric arrays (XGBoost writes each tree's
nodes so) become read-only numpy arrays without a copy. Anything else raises UBJSONError.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

MAX_NESTING = 64

_NUMBERS = {
    ord("i"): ">i1",
    ord("U"): ">u1",
    ord("I"): ">i2",
    ord("l"): ">i4",
    ord("L"): ">i8",
    ord("d"): ">f4",
    ord("D"): ">f8",
}
_STRUCTS = {
    marker: struct.Struct(code)
    for marker, code in zip(_NUMBERS, (">b", ">B", ">h", ">i", ">q", ">f", ">d"), strict=True)
}
_INTEGERS = frozenset(ord(m) for m in "iUIlL")
_CONSTANTS = {ord("T"): True, ord("F"): False, ord("Z"): None}
_STRING, _HIGH_PRECISION, _CHAR = ord("S"), ord("H"), ord("C")
_ARRAY, _ARRAY_END, _OBJECT, _OBJECT_END = ord("["), ord("]"), ord("{"), ord("}")
_TYPE, _COUNT = ord("$"), ord("#")


class UBJSONError(ValueError):
    """The bytes are not the UBJSON this reader takes; the message says where and why."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.end = len(self.data)
        self.pos = 0
        self.nesting = 0

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < self.end else -1

    def marker(self) -> int:
        if self.pos >= self.end:
            raise UBJSONError(f"ends at byte {self.pos} in the middle of a value")
        self.pos += 1
        return self.data[self.pos - 1]

    def skip(self, size: int) -> int:
        """The offset of the next `size` bytes, which are then passed over."""
        if size < 0 or size > self.end - self.pos:
            raise UBJSONError(f"at byte {self.pos}: {size} bytes asked for, fewer are left")
        self.pos += size
        return self.pos - size

    def number(self, marker: int) -> int | float:
        unpack = _STRUCTS[marker]
        value: int | float = unpack.unpack_from(self.data, self.skip(unpack.size))[0]
        return value

    def count(self) -> int:
        marker = self.marker()
        if marker not in _INTEGERS:
            raise UBJSONError(f"at byte {self.pos - 1}: expected a length, got {chr(marker)!r}")
        size = int(self.number(marker))
        if size < 0 or size > self.end - self.pos:
            raise UBJSONError(f"at byte {self.pos}: a length of {size} runs past the end")
        return size

    def text(self) -> str:
        size = self.count()
        start = self.skip(size)
        try:
            return self.data[start : start + size].decode("utf-8")
        except UnicodeDecodeError:
            raise UBJSONError(f"before byte {self.pos}: a string is not UTF-8") from None

    def value(self, marker: int | None = None) -> Any:
        if marker is None:
            marker = self.marker()
        if marker in _STRUCTS:
            return self.number(marker)
        if marker in (_STRING, _HIGH_PRECISION):
            return self.text()
        if marker in _CONSTANTS:
            return _CONSTANTS[marker]
        if marker == _CHAR:
            return chr(self.data[self.skip(1)])
        if marker in (_ARRAY, _OBJECT):
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise UBJSONError(f"at byte {self.pos}: nests deeper than {MAX_NESTING}")
            container = self.array() if marker == _ARRAY else self.object()
            self.nesting -= 1
            return container
        raise UBJSONError(f"at byte {self.pos - 1}: unknown marker {chr(marker)!r}")

    def header(self) -> tuple[int | None, int | None]:
        kind = size = None
        if self.peek() == _TYPE:
            self.pos += 1
            kind = self.marker()
        if self.peek() == _COUNT:
            self.pos += 1
            size = self.count()
        elif kind is not None:
            raise UBJSONError(f"at byte {self.pos}: a typed container needs a count")
        return kind, size

    def array(self) -> list[Any] | np.ndarray:
        kind, size = self.header()
        if kind in _NUMBERS and size is not None:
            dtype = np.dtype(_NUMBERS[kind])
            start = self.skip(size * dtype.itemsize)
            return np.frombuffer(self.data, dtype=dtype, count=size, offset=start)
        if size is not None:
            return [self.value(kind) for _ in range(size)]
        items = []
        while (marker := self.marker()) != _ARRAY_END:
            items.append(self.value(marker))
        return items

    def object(self) -> dict[str, Any]:
        kind, size = self.header()
        out: dict[str, Any] = {}
        if size is not None:
            for _ in range(size):
                key = self.text()
                out[key] = self.value(kind)
            return out
        while self.peek() != _OBJECT_END:
            key = self.text()
            out[key] = self.value()
        self.pos += 1
        return out


def loads(data: bytes) -> Any:
    """The value `data` holds; it must hold exactly one."""
    reader = _Reader(data)
    value = reader.value()
    if reader.pos != reader.end:
        raise UBJSONError(f"{reader.end - reader.pos} bytes follow the value")
    return value
