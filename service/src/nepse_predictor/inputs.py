"""Request bodies to float32 feature rows, checked field by field.

This is the hot path, so it parses JSON with orjson and checks plain Python values instead of
building pydantic models; `schemas.py` documents the same shapes for the OpenAPI document.
Every problem raises `InputError` whose message starts with the JSON path of the field
(`inputs[0].data[13]`, `features.ret_5`, `series[1].bars[4].close`) and says what is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER_TYPES = frozenset((float, int))
_SMALL = 64  # up to this many values the checks run on Python floats, beyond with numpy

_V1_KEYS = frozenset(("features", "instances"))


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
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = repr(value)
        else:
            text = orjson.dumps(value).decode()
    except (TypeError, ValueError, orjson.JSONEncodeError):
        text = f"<{json_type(value)}>"
    return text if len(text) <= 40 else text[:37] + "..."


def load_json(body: bytes) -> Any:
    """Parse a request body; NaN and Infinity tokens are parsed so the field can be named."""
    if not body:
        raise InputError("body", "is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first_error = exc
    # Python's json module (and many clients built on it) writes NaN and Infinity as bare
    # tokens, which strict JSON parsers reject; read them so the check below can say which
    # field holds one instead of a bare "invalid JSON".
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InputError("body", f"is not valid JSON: {first_error}") from None


def bad_number(value: Any) -> str | None:
    """Why `value` is not an acceptable feature value, or None if it is one."""
    if type(value) not in _NUMBER_TYPES:
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


def _first_bad(values: Sequence[Any]) -> tuple[int, str] | None:
    for index, value in enumerate(values):
        problem = bad_number(value)
        if problem is not None:
            return index, problem
    return None


def to_float32(values: list[Any], name_of: Any) -> np.ndarray:
    """A flat list of JSON numbers as float32; `name_of(i)` names element i in errors."""
    if len(values) <= _SMALL:
        try:
            ok = set(map(type, values)) <= _NUMBER_TYPES and (
                not values
                or (
                    math.isfinite(sum(values))
                    and min(values) >= -FLOAT32_MAX
                    and max(values) <= FLOAT32_MAX
                )
            )
        except OverflowError:
            ok = False
        if ok:
            return np.array(values, dtype=np.float32)
        bad = _first_bad(values)
        if bad is None:  # the sum overflowed while every value is in range
            return np.array(values, dtype=np.float32)
        raise InputError(name_of(bad[0]), bad[1])
    if not set(map(type, values)) <= _NUMBER_TYPES:
        bad = _first_bad(values)
        assert bad is not None
        raise InputError(name_of(bad[0]), bad[1])
    try:
        wide = np.array(values, dtype=np.float64)
    except OverflowError:
        bad = _first_bad(values)
        assert bad is not None
        raise InputError(name_of(bad[0]), bad[1]) from None
    finite = np.isfinite(wide)
    if not finite.all() or np.abs(wide).max() > FLOAT32_MAX:
        bad = _first_bad(values)
        assert bad is not None
        raise InputError(name_of(bad[0]), bad[1])
    return wide.astype(np.float32)


def check_rows(rows: int, field: str, max_rows: int) -> None:
    if rows > max_rows:
        raise InputError(
            field,
            f"{rows} rows exceed the limit of {max_rows} per request (NEPSE_MAX_BATCH_ROWS); "
            "split the batch",
            status=413,
        )


# --- /v1/predict ------------------------------------------------------------------------


def _row_values(row: Any, field: str, features: tuple[str, ...], feature_set: frozenset[str]):
    if type(row) is not dict:
        raise InputError(field, f"expected an object of feature values, got {json_type(row)}")
    if row.keys() != feature_set:
        unknown = [k for k in row if k not in feature_set]
        if unknown:
            raise InputError(
                f"{field}.{unknown[0]}",
                f"unknown feature; expected exactly these: {', '.join(features)}",
            )
        missing = [name for name in features if name not in row]
        raise InputError(
            f"{field}.{missing[0]}", f"missing feature (missing: {', '.join(missing)})"
        )
    return [row[name] for name in features]


def parse_v1(body: bytes, features: tuple[str, ...], max_rows: int) -> np.ndarray:
    """`{"features": {...}}` (one row) or `{"instances": [{...}, ...]}` -> rows x features."""
    obj = load_json(body)
    if type(obj) is not dict:
        raise InputError("body", f"expected a JSON object, got {json_type(obj)}")
    feature_set = frozenset(features)
    if len(obj) != 1 or not obj.keys() <= _V1_KEYS:
        unknown = [k for k in obj if k not in _V1_KEYS]
        if unknown:
            raise InputError(unknown[0], "unknown field; send 'features' (one row) or 'instances'")
        raise InputError(
            "body", "send exactly one of 'features' (one row) or 'instances' (a list of rows)"
        )
    if "features" in obj:
        values = _row_values(obj["features"], "features", features, feature_set)
        width = len(features)
        return to_float32(values, lambda i: f"features.{features[i % width]}").reshape(1, width)

    instances = obj["instances"]
    if type(instances) is not list:
        raise InputError("instances", f"expected a list of rows, got {json_type(instances)}")
    if not instances:
        raise InputError("instances", "is empty; send at least one row")
    check_rows(len(instances), "instances", max_rows)
    flat: list[Any] = []
    for index, row in enumerate(instances):
        flat.extend(_row_values(row, f"instances[{index}]", features, feature_set))
    width = len(features)
    matrix = to_float32(flat, lambda i: f"instances[{i // width}].{features[i % width]}")
    return matrix.reshape(len(instances), width)
