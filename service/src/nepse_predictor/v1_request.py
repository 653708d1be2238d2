"""`/v1/predict` bodies to float32 feature rows: `{"features": {...}}` (one row) or
`{"instances": [{...}, ...]}` (a batch), each row naming every feature once."""

from __future__ import annotations

from typing import Any

import numpy as np
from msgspec import UNSET
from msgspec.structs import astuple

from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.input_error import InputError, check_rows
from nepse_predictor.request_decoding import decode, hint_table
from nepse_predictor.request_shapes import PredictRequest

_EXPECTED = ", ".join(FEATURE_NAMES)
_ROW = "expected an object of feature values, got {got}"
HINTS = hint_table(
    {
        ("unknown", "features.*|instances[*].*"): (
            f"unknown feature; expected exactly these: {_EXPECTED}"
        ),
        ("missing", "features.*|instances[*].*"): "missing feature",
        ("unknown", "*"): "unknown field; send 'features' (one row) or 'instances'",
        ("type", "features|instances[*]"): _ROW,
        ("type", "instances"): "expected a list of rows, got {got}",
        ("length", "instances"): "is empty; send at least one row",
    }
)


_ONE_OF = "send exactly one of 'features' (one row) or 'instances' (a list of rows)"


def _one_of(document: Any) -> None:
    if isinstance(document, dict) and "features" in document and "instances" in document:
        raise InputError("body", _ONE_OF)


def parse_v1(body: bytes, max_rows: int) -> np.ndarray:
    """The rows of a `/v1/predict` body, rows x features in FEATURE_NAMES order (the order
    every served model has; `model.load_model` refuses another)."""
    request = decode(body, PredictRequest, HINTS, whole=_one_of)
    one, many = request.features, request.instances
    if one is not UNSET:
        if many is not UNSET:
            raise InputError("body", _ONE_OF)
        return np.array([astuple(one)], dtype=np.float32)
    if many is UNSET:
        raise InputError("body", _ONE_OF)
    check_rows(len(many), "instances", max_rows)
    return np.array([astuple(row) for row in many], dtype=np.float32)
