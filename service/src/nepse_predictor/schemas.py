"""Request and response shapes, for the OpenAPI document.

The hot path checks bodies by hand (`inputs.py`, `oip_request.py`, `bars_request.py`: faster
than building models); these models describe the same shapes, with the same bounds (float32
range, row limits), and are imported only when /openapi.json is first asked for. A test runs
schemathesis's positive-data check against them: what the schema allows, the server accepts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from nepse_predictor.features import FEATURE_NAMES, MIN_BARS
from nepse_predictor.inputs import FLOAT32_MAX

_STRICT = ConfigDict(extra="forbid")

FeatureRow = create_model(  # type: ignore[call-overload]
    "FeatureRow",
    __config__=_STRICT,
    **{
        name: (
            float,
            Field(..., ge=-FLOAT32_MAX, le=FLOAT32_MAX, description=f"feature `{name}`"),
        )
        for name in FEATURE_NAMES
    },
)


class PredictOneRequest(BaseModel):
    model_config = _STRICT
    features: FeatureRow  # type: ignore[valid-type]


class PredictBatchRequest(BaseModel):
    model_config = _STRICT
    instances: list[FeatureRow] = Field(  # type: ignore[valid-type]
        ..., min_length=1, description="rows, at most NEPSE_MAX_BATCH_ROWS"
    )


class Prediction(BaseModel):
    probability: float = Field(..., ge=0, le=1, description="P(next session closes higher)")
    label: Literal[0, 1]
    direction: Literal["up", "down"]


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    track: str
    request_id: str
    threshold: float
    predictions: list[Prediction]


class Bar(BaseModel):
    model_config = _STRICT
    date: str | None = Field(
        None,
        description="a date (YYYY-MM-DD) or an ISO 8601 timestamp for intraday bars; on all "
        "bars or none, increasing",
    )
    open: float = Field(..., gt=0, le=FLOAT32_MAX)
    high: float = Field(..., gt=0, le=FLOAT32_MAX, description="at least open, close and low")
    low: float = Field(..., gt=0, le=FLOAT32_MAX, description="at most open and close")
    close: float = Field(..., gt=0, le=FLOAT32_MAX)
    volume: float = Field(..., ge=0, le=FLOAT32_MAX)


class BarSeries(BaseModel):
    model_config = _STRICT
    symbol: str = Field(..., min_length=1, max_length=64)
    bars: list[Bar] = Field(..., min_length=MIN_BARS, description="oldest first")


class BarsRequest(BaseModel):
    model_config = _STRICT
    series: list[BarSeries] = Field(..., min_length=1)


class BarPrediction(Prediction):
    symbol: str
    as_of: str | None = Field(None, description="date of the last bar, when dates were sent")


class BarsResponse(PredictResponse):
    predictions: list[BarPrediction]  # type: ignore[assignment]


class InputParameters(BaseModel):
    binary_data_size: int | None = Field(
        None,
        ge=0,
        description="binary tensor data extension: the input's bytes follow the JSON header "
        "(Inference-Header-Content-Length), in input order; `data` is left out",
    )


class RequestInput(BaseModel):
    model_config = _STRICT
    name: str = Field(..., description="'features' (any name) for [N, F], or a feature name")
    shape: list[int] = Field(..., min_length=1, max_length=2)
    datatype: Literal["FP32", "FP64"]
    data: list[Any] | None = Field(
        None, description="row-major, flat or nested; prod(shape) finite float32 numbers"
    )
    parameters: InputParameters | None = None


class OutputParameters(BaseModel):
    binary_data: bool | None = Field(None, description="return this output as raw bytes")


class RequestOutput(BaseModel):
    model_config = _STRICT
    name: Literal["probability", "label"]
    parameters: OutputParameters | None = None


class RequestParameters(BaseModel):
    binary_data_output: bool | None = Field(
        None, description="return every output as raw bytes unless it says otherwise"
    )


class InferenceRequest(BaseModel):
    model_config = _STRICT
    id: str | None = None
    model_name: str | None = Field(None, description="as KServe's client sends it; must match")
    model_version: str | None = Field(None, description="must match the path's, if it has one")
    parameters: RequestParameters | None = None
    inputs: list[RequestInput] = Field(..., min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float] | None = Field(None, description="left out when sent as binary")
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_size` when the output follows the JSON header as bytes"
    )


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any]


class ServerMetadataResponse(BaseModel):
    name: str
    version: str
    extensions: list[str]


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


class ErrorResponse(BaseModel):
    error: str = Field(..., description="what is wrong, starting with the field's JSON path")
    field: str | None = Field(None, description="JSON path of the offending field")


DOCUMENTED = (
    PredictOneRequest,
    PredictBatchRequest,
    PredictResponse,
    BarsRequest,
    BarsResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadataResponse,
    ServerMetadataResponse,
    LiveResponse,
    ReadyResponse,
    ModelReadyResponse,
    ErrorResponse,
)


def component_schemas(max_rows: int, max_bars: int) -> dict[str, Any]:
    """OpenAPI components for every documented model (nested ones hoisted), with this
    server's row and bar limits."""
    out: dict[str, Any] = {}
    template = "#/components/schemas/{model}"
    for model in DOCUMENTED:
        schema = model.model_json_schema(ref_template=template)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    out["PredictBatchRequest"]["properties"]["instances"]["maxItems"] = max_rows
    out["BarsRequest"]["properties"]["series"]["maxItems"] = min(max_rows, max_bars // MIN_BARS)
    out["PredictRequest"] = {
        "title": "PredictRequest",
        "description": "One row (`features`) or a batch (`instances`).",
        "oneOf": [
            {"$ref": template.format(model="PredictOneRequest")},
            {"$ref": template.format(model="PredictBatchRequest")},
        ],
    }
    return out
