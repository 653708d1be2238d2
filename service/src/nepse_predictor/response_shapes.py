"""The response bodies, for the OpenAPI document. The routes write them with orjson
(`handlers.predict._render`, `handlers.oip._render`); tests/service/test_response_shapes.py
decodes every kind of answer with these shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct


class Strict(Struct, forbid_unknown_fields=True):
    """A JSON object with exactly these members."""


class Prediction(Strict):
    probability: Annotated[float, Meta(ge=0, le=1, description="P(next session closes higher)")]
    label: Literal[0, 1]
    direction: Literal["up", "down"]


class PredictResponse(Strict):
    model_name: str
    model_version: str
    track: str
    request_id: str
    threshold: float
    predictions: list[Prediction]


class BarPrediction(Prediction):
    symbol: str
    as_of: Annotated[str, Meta(description="date of the last bar, when dates were sent")] | None


class BarsResponse(Strict):
    model_name: str
    model_version: str
    track: str
    request_id: str
    threshold: float
    predictions: list[BarPrediction]


class ResponseOutput(Strict):
    name: str
    shape: list[int]
    datatype: str
    data: Annotated[list[float], Meta(description="left out when sent as binary")] | None = None
    parameters: (
        Annotated[
            dict[str, Any],
            Meta(description="`binary_data_size` when the output follows the JSON header"),
        ]
        | None
    ) = None


class InferenceResponse(Strict):
    model_name: str
    model_version: str
    id: str
    outputs: list[ResponseOutput]


class MetadataTensor(Strict):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(Strict):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any]


class ServerMetadataResponse(Strict):
    name: str
    version: str
    extensions: list[str]


class LiveResponse(Strict):
    live: bool


class ReadyResponse(Strict):
    ready: bool


class ModelReadyResponse(Strict):
    name: str
    ready: bool


class ErrorResponse(Strict):
    error: Annotated[str, Meta(description="what is wrong, starting with the field's JSON path")]
    field: Annotated[str, Meta(description="JSON path of the offending field")] | None = None


RESPONSE_SHAPES = (
    PredictResponse,
    BarsResponse,
    InferenceResponse,
    ModelMetadataResponse,
    ServerMetadataResponse,
    LiveResponse,
    ReadyResponse,
    ModelReadyResponse,
    ErrorResponse,
)
