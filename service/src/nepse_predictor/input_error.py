"""The error a request body gets, and the words it uses to describe a JSON value.

Every problem with a body raises `InputError`, whose message starts with the JSON path of the
field (`inputs[0].data[13]`, `features.ret_5`, `series[1].bars[4].close`) and says what is
wrong; it is answered as `{"error": ..., "field": ...}` with 422, or 413 when too large.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

FLOAT32_MAX = float(np.finfo(np.float32).max)


class InputError(ValueError):
    """A request the client must change: 422 by default, 413 when it is too large."""

    def __init__(self, field: str, problem: str, status: int = 422) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a worker process (heavy_work) and rebuilt here.
        return (InputError, (self.field, self.problem, self.status))

    def payload(self) -> bytes:
        return orjson.dumps({"error": str(self), "field": self.field})


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def show(value: Any) -> str:
    """A value as the client wrote it, cut to 40 characters."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = repr(value)
        else:
            text = orjson.dumps(value).decode()
    except (TypeError, ValueError, orjson.JSONEncodeError):
        text = f"<{json_type(value)}>"
    return text if len(text) <= 40 else text[:37] + "..."


def bad_number(value: Any) -> str | None:
    """Why `value` is not a finite float32 number, or None if it is one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {json_type(value)} {show(value)}"
    try:
        number = float(value)
    except OverflowError:
        return f"{show(value)} is outside the float32 range"
    if math.isnan(number):
        return "NaN is not allowed; send a finite number"
    if math.isinf(number):
        return f"{'-' if number < 0 else ''}Infinity is not allowed; send a finite number"
    if abs(number) > FLOAT32_MAX:
        return f"{show(value)} is outside the float32 range"
    return None


def check_rows(rows: int, field: str, max_rows: int) -> None:
    if rows > max_rows:
        raise InputError(
            field,
            f"{rows} rows exceed the limit of {max_rows} per request (NEPSE_MAX_BATCH_ROWS); "
            "split the batch",
            status=413,
        )
