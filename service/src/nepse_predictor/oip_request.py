"""Open Inference Protocol v2 inference requests to float32 feature rows.

The request is one [N, F] tensor (columns in `features` order) or one [N] (or [N, 1]) tensor
per feature, FP32 or FP64, as JSON `data` or, with the binary tensor data extension, as raw
little-endian bytes after the JSON header (`Inference-Header-Content-Length` gives the
header's size, each input's `parameters.binary_data_size` its share of the bytes, in input
order). The fields of the protocol's request schema are accepted: `id`, `parameters`,
`inputs`, `outputs`, plus `model_name` and `model_version` as KServe's client sends them,
which must name the model of the path. Errors raise `InputError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nepse_predictor.inputs import (
    FLOAT32_MAX,
    InputError,
    check_rows,
    json_type,
    load_json,
    show,
    to_float32,
)

OIP_DATATYPES = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
OIP_OUTPUTS = ("probability", "label")
_REQUEST_KEYS = frozenset(("id", "parameters", "inputs", "outputs", "model_name", "model_version"))
_INPUT_KEYS = frozenset(("name", "shape", "datatype", "data", "parameters"))
_OUTPUT_KEYS = frozenset(("name", "parameters"))
HEADER_LENGTH = "Inference-Header-Content-Length"


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


def _parameters(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise InputError(field, f"expected an object, got {json_type(value)}")
    return value


def _flag(parameters: dict[str, Any], key: str, field: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and type(value) is not bool:
        raise InputError(f"{field}.{key}", f"expected true or false, got {show(value)}")
    return value


def _flatten(data: list[Any], field: str, depth: int) -> list[Any]:
    """Nested row-major tensor data to a flat list (the protocol allows both forms)."""
    if depth > 2:
        raise InputError(field, "nests deeper than the tensor's 2 dimensions")
    flat: list[Any] = []
    for index, item in enumerate(data):
        if type(item) is list:
            flat.extend(_flatten(item, f"{field}[{index}]", depth + 1))
        else:
            flat.append(item)
    return flat


def _shape(value: Any, field: str) -> list[int]:
    if type(value) is not list or not value:
        raise InputError(field, f"expected a list of dimension sizes, got {show(value)}")
    for index, size in enumerate(value):
        if type(size) is not int or size < 0:
            raise InputError(
                f"{field}[{index}]", f"expected a non-negative integer, got {show(size)}"
            )
    return value


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None
    binary_size: int | None
    field: str


def _tensor(tensor: Any, field: str) -> _Tensor:
    if type(tensor) is not dict:
        raise InputError(field, f"expected a tensor object, got {json_type(tensor)}")
    for key in tensor:
        if key not in _INPUT_KEYS:
            raise InputError(f"{field}.{key}", "unknown field of a request input")
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise InputError(f"{field}.{key}", "missing required field")
    name, datatype = tensor["name"], tensor["datatype"]
    if type(name) is not str:
        raise InputError(f"{field}.name", f"expected a string, got {json_type(name)}")
    if datatype not in OIP_DATATYPES:
        raise InputError(
            f"{field}.datatype",
            f"{show(datatype)} is not supported; use one of {', '.join(OIP_DATATYPES)}",
        )
    shape = _shape(tensor["shape"], f"{field}.shape")
    parameters = _parameters(tensor.get("parameters"), f"{field}.parameters")
    binary_size = parameters.get("binary_data_size")
    if binary_size is not None:
        if type(binary_size) is not int or binary_size < 0:
            raise InputError(
                f"{field}.parameters.binary_data_size",
                f"expected a non-negative integer, got {show(binary_size)}",
            )
        if "data" in tensor:
            raise InputError(
                f"{field}.data", "must be left out when parameters.binary_data_size is given"
            )
        return _Tensor(name, shape, datatype, None, binary_size, field)
    if "data" not in tensor:
        raise InputError(
            f"{field}.data", "missing required field (or give parameters.binary_data_size)"
        )
    data = tensor["data"]
    if type(data) is not list:
        raise InputError(f"{field}.data", f"expected a list of numbers, got {json_type(data)}")
    return _Tensor(name, shape, datatype, data, None, field)


def _binary_values(tensor: _Tensor, count: int, binary: _Binary | None) -> np.ndarray:
    """A binary tensor's `count` values as float32, checked to be finite and in range."""
    field = tensor.field
    size_field = f"{field}.parameters.binary_data_size"
    if binary is None:
        raise InputError(
            size_field, f"binary data needs the {HEADER_LENGTH} header to find where it starts"
        )
    dtype = OIP_DATATYPES[tensor.datatype]
    assert tensor.binary_size is not None
    if tensor.binary_size != count * dtype.itemsize:
        raise InputError(
            size_field,
            f"is {tensor.binary_size}; shape {tensor.shape} of {tensor.datatype} needs "
            f"{count * dtype.itemsize} bytes",
        )
    values = np.frombuffer(binary.take(tensor.binary_size, size_field), dtype=dtype)
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


def _values(tensor: _Tensor, count: int, binary: _Binary | None, name_of: Any) -> np.ndarray:
    if tensor.binary_size is not None:
        return _binary_values(tensor, count, binary)
    data = tensor.data
    assert data is not None
    depth = len(tensor.shape) - 1
    flat = _flatten(data, f"{tensor.field}.data", depth) if data and type(data[0]) is list else data
    if len(flat) != count:
        raise InputError(
            f"{tensor.field}.data", f"has {len(flat)} values; shape {tensor.shape} needs {count}"
        )
    return to_float32(flat, name_of)


def _outputs(value: Any, binary_default: bool) -> tuple[RequestedOutput, ...]:
    if value is None:
        return (RequestedOutput("probability", binary_default),)
    if type(value) is not list or not value:
        raise InputError("outputs", 'expected a non-empty list of {"name": ...} objects')
    outputs: dict[str, RequestedOutput] = {}
    for index, item in enumerate(value):
        field = f"outputs[{index}]"
        if type(item) is not dict:
            raise InputError(field, f'expected a {{"name": ...}} object, got {json_type(item)}')
        for key in item:
            if key not in _OUTPUT_KEYS:
                raise InputError(f"{field}.{key}", "unknown field of a requested output")
        name = item.get("name")
        if name not in OIP_OUTPUTS:
            raise InputError(
                f"{field}.name",
                f"{show(name)} is not an output of this model; choose from "
                f"{', '.join(OIP_OUTPUTS)}",
            )
        parameters = _parameters(item.get("parameters"), f"{field}.parameters")
        if parameters.get("classification") not in (None, 0):
            raise InputError(
                f"{field}.parameters.classification",
                "the classification extension is not supported; ask for 'label' instead",
            )
        binary = _flag(parameters, "binary_data", f"{field}.parameters")
        if name not in outputs:
            outputs[name] = RequestedOutput(name, binary_default if binary is None else binary)
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


def _check_names(obj: dict[str, Any], model_name: str, model_version: str | None) -> None:
    for key, expected in (("model_name", model_name), ("model_version", model_version)):
        if key not in obj:
            continue
        value = obj[key]
        if type(value) is not str:
            raise InputError(key, f"expected a string, got {json_type(value)}")
        if expected is not None and value != expected:
            raise InputError(key, f"is {show(value)} but the path names {expected!r}")


def parse_infer(
    body: bytes,
    features: tuple[str, ...],
    max_rows: int,
    header_length: int | None = None,
    model_name: str = "",
    model_version: str | None = None,
) -> InferRequest:
    """An inference request on `model_name` (and `model_version`, when the path names one)."""
    header, binary = _split(body, header_length)
    obj = load_json(header)
    if type(obj) is not dict:
        raise InputError("body", f"expected an inference request object, got {json_type(obj)}")
    for key in obj:
        if key not in _REQUEST_KEYS:
            raise InputError(key, "unknown field of an inference request")
    _check_names(obj, model_name, model_version)
    request_id = obj.get("id")
    if request_id is not None and type(request_id) is not str:
        raise InputError("id", f"expected a string, got {json_type(request_id)}")
    parameters = _parameters(obj.get("parameters"), "parameters")
    binary_output = bool(_flag(parameters, "binary_data_output", "parameters"))
    outputs = _outputs(obj.get("outputs"), binary_output)
    inputs = obj.get("inputs")
    if type(inputs) is not list or not inputs:
        raise InputError("inputs", "expected a non-empty list of input tensors")
    tensors = [_tensor(tensor, f"inputs[{index}]") for index, tensor in enumerate(inputs)]
    if len(tensors) == 1:
        rows, datatype = _matrix(tensors[0], features, max_rows, binary)
    else:
        rows, datatype = _columns(tensors, features, max_rows, binary)
    if binary is not None and binary.offset != len(binary.data):
        raise InputError(
            "body",
            f"{len(binary.data) - binary.offset} bytes of binary data are left after the "
            "last input's binary_data_size",
        )
    return InferRequest(rows, request_id, outputs, datatype)


def _matrix(
    tensor: _Tensor, features: tuple[str, ...], max_rows: int, binary: _Binary | None
) -> tuple[np.ndarray, str]:
    width = len(features)
    shape = tensor.shape
    if len(shape) != 2 or shape[1] != width:
        if tensor.name in features and width > 1:
            missing = [n for n in features if n != tensor.name]
            raise InputError(
                "inputs",
                f"one tensor per feature needs all {width}; missing: {', '.join(missing)}",
            )
        raise InputError(
            "inputs[0].shape",
            f"{shape} does not fit; send one [N, {width}] tensor (rows x features in the "
            f"order {', '.join(features)}) or one [N] tensor per feature",
        )
    rows = shape[0]
    check_rows(rows, "inputs[0].shape[0]", max_rows)
    if rows == 0:
        raise InputError("inputs[0].shape[0]", "is 0; send at least one row")
    values = _values(
        tensor,
        rows * width,
        binary,
        lambda i: f"inputs[0].data[{i}] (row {i // width}, {features[i % width]})",
    )
    return values.reshape(rows, width), tensor.datatype


def _columns(
    tensors: list[_Tensor], features: tuple[str, ...], max_rows: int, binary: _Binary | None
) -> tuple[np.ndarray, str]:
    """One tensor per feature, in any order."""
    width = len(features)
    columns: dict[str, np.ndarray] = {}
    rows = -1
    for tensor in tensors:
        field, name, shape = tensor.field, tensor.name, tensor.shape
        if name not in features:
            raise InputError(
                f"{field}.name",
                f"{show(name)} is not a feature; expected one tensor per feature "
                f"({', '.join(features)}) or a single [N, {width}] tensor",
            )
        if name in columns:
            raise InputError(f"{field}.name", f"feature {name!r} is sent twice")
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
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
        columns[name] = _values(
            tensor, rows, binary, lambda i, f=field, n=name: f"{f}.data[{i}] ({n})"
        )
    missing = [name for name in features if name not in columns]
    if missing:
        raise InputError("inputs", f"missing feature tensors: {', '.join(missing)}")
    matrix = np.column_stack([columns[name] for name in features])
    return np.ascontiguousarray(matrix), tensors[0].datatype
