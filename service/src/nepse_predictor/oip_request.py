"""Open Inference Protocol v2 inference requests to float32 feature rows.

The request (its shape is `request_shapes.InferenceRequest`) is one [N, F] tensor (columns in
FEATURE_NAMES order) or one [N] (or [N, 1]) tensor per feature, FP32 or FP64, as JSON `data`
or, with the binary tensor data extension, as raw little-endian bytes after the JSON header
(`Inference-Header-Content-Length` gives the header's size, each input's
`parameters.binary_data_size` its share of the bytes, in input order). `model_name` and
`model_version`, as KServe's client sends them, must name the model of the path. What the
shape cannot say (prod(shape) values, one tensor per feature, the binary sizes) is checked
here; errors raise `InputError` naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.input_error import FLOAT32_MAX, InputError, check_rows, show
from nepse_predictor.request_decoding import decode, hint_table
from nepse_predictor.request_shapes import InferenceRequest, RequestInput

_FEATURES = FEATURE_NAMES
_WIDTH = len(FEATURE_NAMES)
OIP_DATATYPES: dict[str, np.dtype[np.floating[Any]]] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
OIP_OUTPUTS = ("probability", "label")
HEADER_LENGTH = "Inference-Header-Content-Length"

_INPUTS = "expected a non-empty list of input tensors"
_OUTPUTS = 'expected a non-empty list of {{"name": ...}} objects'
_OUTPUT_NAMES = ", ".join(OIP_OUTPUTS)
HINTS = hint_table(
    {
        ("missing|length", "inputs"): _INPUTS,
        ("type", "inputs"): _INPUTS + ", got {got}",
        ("type", "inputs[*]"): "expected a tensor object, got {got}",
        ("unknown", "inputs[*].*"): "unknown field of a request input",
        ("type", "inputs[*].shape"): "expected a list of dimension sizes, got {got} {value}",
        ("length", "inputs[*].shape"): "expected a list of 1 or 2 dimension sizes, got {value}",
        ("enum|type", "inputs[*].datatype"): (
            f"{{value}} is not supported; use one of {', '.join(OIP_DATATYPES)}"
        ),
        ("type", "inputs[*].data"): "expected a list of numbers, got {got}",
        ("unknown", "*"): "unknown field of an inference request",
        ("type", "outputs"): _OUTPUTS + ", got {got}",
        ("length", "outputs"): _OUTPUTS,
        ("type", "outputs[*]"): 'expected a {{"name": ...}} object, got {got}',
        ("unknown", "outputs[*].*"): "unknown field of a requested output",
        ("enum|type", "outputs[*].name"): (
            f"{{value}} is not an output of this model; choose from {_OUTPUT_NAMES}"
        ),
        ("missing", "outputs[*].name"): f"missing; choose from {_OUTPUT_NAMES}",
    }
)

_DATA_FIELD = re.compile(r"^inputs\[(\d+)\]\.data\[(\d+)\]$")


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    rows: np.ndarray
    id: str | None
    outputs: tuple[RequestedOutput, ...]
    datatype: str


class _Binary:
    """The bytes after the JSON header, handed out to the inputs in order."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int, field: str) -> memoryview:
        end = self.offset + size
        if end > len(self.data):
            raise InputError(
                field,
                f"asks for {size} bytes of binary data but only {len(self.data) - self.offset} "
                "are left after the JSON header",
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk


def _where_in_tensor(field: str, document: Any) -> str:
    """Which row and feature a flat `inputs[i].data[j]` is, for the error's field."""
    match = _DATA_FIELD.match(field)
    if match is None or not isinstance(document, dict):
        return ""
    inputs = document.get("inputs")
    tensor_index, index = int(match[1]), int(match[2])
    if not (
        isinstance(inputs, list)
        and tensor_index < len(inputs)
        and isinstance(inputs[tensor_index], dict)
    ):
        return ""
    tensor = inputs[tensor_index]
    shape = tensor.get("shape")
    if len(inputs) == 1 and isinstance(shape, list) and len(shape) == 2 and shape[1] == _WIDTH:
        return f" (row {index // _WIDTH}, {_FEATURES[index % _WIDTH]})"
    if tensor.get("name") in _FEATURES:
        return f" ({tensor['name']})"
    return ""


def _flat_values(data: list[Any]) -> np.ndarray:
    """Row-major data, flat or nested one level (the shape's two dimensions), as float32."""
    try:
        return np.array(data, dtype=np.float32).reshape(-1)
    except ValueError:  # rows of different lengths, or numbers and rows mixed
        flat: list[Any] = []
        for item in data:
            if type(item) is list:
                flat.extend(item)
            else:
                flat.append(item)
        return np.array(flat, dtype=np.float32)


def _binary_values(
    tensor: RequestInput, field: str, count: int, binary: _Binary | None
) -> np.ndarray:
    """A binary tensor's `count` values as float32, checked to be finite and in range."""
    size_field = f"{field}.parameters.binary_data_size"
    if binary is None:
        raise InputError(
            size_field, f"binary data needs the {HEADER_LENGTH} header to find where it starts"
        )
    assert tensor.parameters is not None and tensor.parameters.binary_data_size is not None
    size = tensor.parameters.binary_data_size
    dtype = OIP_DATATYPES[tensor.datatype]
    if size != count * dtype.itemsize:
        raise InputError(
            size_field,
            f"is {size}; shape {tensor.shape} of {tensor.datatype} needs "
            f"{count * dtype.itemsize} bytes",
        )
    values = np.frombuffer(binary.take(size, size_field), dtype=dtype)
    wide = values.astype(np.float64, copy=False)
    bad = ~np.isfinite(wide) | (np.abs(wide) > FLOAT32_MAX)
    if bad.any():
        index = int(np.argmax(bad))
        value = float(wide[index])
        problem = (
            "NaN is not allowed; send a finite number"
            if math.isnan(value)
            else "Infinity is not allowed; send a finite number"
            if math.isinf(value)
            else f"{value!r} is outside the float32 range"
        )
        raise InputError(f"{field} (binary) value {index}", problem)
    return values.astype(np.float32)


def _values(tensor: RequestInput, field: str, count: int, binary: _Binary | None) -> np.ndarray:
    """The tensor's `count` values as float32, from its JSON data or its binary data."""
    binary_size = tensor.parameters.binary_data_size if tensor.parameters else None
    if binary_size is not None:
        if tensor.data is not None:
            raise InputError(
                f"{field}.data", "must be left out when parameters.binary_data_size is given"
            )
        return _binary_values(tensor, field, count, binary)
    if tensor.data is None:
        raise InputError(
            f"{field}.data", "missing required field (or give parameters.binary_data_size)"
        )
    values = _flat_values(tensor.data)
    if len(values) != count:
        raise InputError(
            f"{field}.data", f"has {len(values)} values; shape {tensor.shape} needs {count}"
        )
    return values


def _outputs(request: InferenceRequest) -> tuple[RequestedOutput, ...]:
    default = bool(request.parameters and request.parameters.binary_data_output)
    if request.outputs is None:
        return (RequestedOutput("probability", default),)
    outputs: dict[str, RequestedOutput] = {}
    for index, item in enumerate(request.outputs):
        parameters = item.parameters
        if parameters is not None and parameters.classification not in (None, 0):
            raise InputError(
                f"outputs[{index}].parameters.classification",
                "the classification extension is not supported; ask for 'label' instead",
            )
        binary = parameters.binary_data if parameters is not None else None
        if item.name not in outputs:
            outputs[item.name] = RequestedOutput(item.name, default if binary is None else binary)
    return tuple(outputs.values())


def _split(body: bytes, header_length: int | None) -> tuple[bytes, _Binary | None]:
    if header_length is None:
        return body, None
    if not 0 < header_length <= len(body):
        raise InputError(
            HEADER_LENGTH,
            f"is {header_length if header_length >= 0 else 'not a number'}; it must be the "
            f"size of the JSON header, between 1 and the body's {len(body)} bytes",
        )
    return body[:header_length], _Binary(memoryview(body)[header_length:])


def _check_names(request: InferenceRequest, model_name: str, model_version: str | None) -> None:
    for key, sent, expected in (
        ("model_name", request.model_name, model_name),
        ("model_version", request.model_version, model_version),
    ):
        if sent is not None and expected is not None and sent != expected:
            raise InputError(key, f"is {show(sent)} but the path names {expected!r}")


def parse_infer(
    body: bytes,
    max_rows: int,
    header_length: int | None = None,
    model_name: str = "",
    model_version: str | None = None,
) -> InferRequest:
    """An inference request on `model_name` (and `model_version`, when the path names one)."""
    header, binary = _split(body, header_length)
    request = decode(header, InferenceRequest, HINTS, _where_in_tensor)
    _check_names(request, model_name, model_version)
    outputs = _outputs(request)
    tensors = request.inputs
    if len(tensors) == 1:
        rows, datatype = _matrix(tensors[0], max_rows, binary)
    else:
        rows, datatype = _columns(tensors, max_rows, binary)
    if binary is not None and binary.offset != len(binary.data):
        raise InputError(
            "body",
            f"{len(binary.data) - binary.offset} bytes of binary data are left after the "
            "last input's binary_data_size",
        )
    return InferRequest(rows, request.id, outputs, datatype)


def _matrix(tensor: RequestInput, max_rows: int, binary: _Binary | None) -> tuple[np.ndarray, str]:
    shape = tensor.shape
    if len(shape) != 2 or shape[1] != _WIDTH:
        if tensor.name in _FEATURES and _WIDTH > 1:
            missing = [n for n in _FEATURES if n != tensor.name]
            raise InputError(
                "inputs",
                f"one tensor per feature needs all {_WIDTH}; missing: {', '.join(missing)}",
            )
        raise InputError(
            "inputs[0].shape",
            f"{shape} does not fit; send one [N, {_WIDTH}] tensor (rows x features in the "
            f"order {', '.join(_FEATURES)}) or one [N] tensor per feature",
        )
    rows = shape[0]
    check_rows(rows, "inputs[0].shape[0]", max_rows)
    if rows == 0:
        raise InputError("inputs[0].shape[0]", "is 0; send at least one row")
    values = _values(tensor, "inputs[0]", rows * _WIDTH, binary)
    return values.reshape(rows, _WIDTH), tensor.datatype


def _columns(
    tensors: list[RequestInput], max_rows: int, binary: _Binary | None
) -> tuple[np.ndarray, str]:
    """One tensor per feature, in any order."""
    columns: dict[str, np.ndarray] = {}
    rows = -1
    for index, tensor in enumerate(tensors):
        field, name, shape = f"inputs[{index}]", tensor.name, tensor.shape
        if name not in _FEATURES:
            raise InputError(
                f"{field}.name",
                f"{show(name)} is not a feature; expected one tensor per feature "
                f"({', '.join(_FEATURES)}) or a single [N, {_WIDTH}] tensor",
            )
        if name in columns:
            raise InputError(f"{field}.name", f"feature {name!r} is sent twice")
        if len(shape) == 2 and shape[1] != 1:
            raise InputError(f"{field}.shape", f"{shape} does not fit; expected [N] or [N, 1]")
        if rows == -1:
            rows = shape[0]
            check_rows(rows, f"{field}.shape[0]", max_rows)
            if rows == 0:
                raise InputError(f"{field}.shape[0]", "is 0; send at least one row")
        elif shape[0] != rows:
            raise InputError(
                f"{field}.shape[0]", f"is {shape[0]} but the first input has {rows} rows"
            )
        columns[name] = _values(tensor, field, rows, binary)
    missing = [name for name in _FEATURES if name not in columns]
    if missing:
        raise InputError("inputs", f"missing feature tensors: {', '.join(missing)}")
    matrix = np.column_stack([columns[name] for name in _FEATURES])
    return np.ascontiguousarray(matrix), tensors[0].datatype
