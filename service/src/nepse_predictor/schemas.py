"""Request and response shapes, for the OpenAPI document.

The hot path checks bodies by hand in `inputs.py` (faster than building models); these models
describe the same shapes and are imported only when /openapi.json is first asked for.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from nepse_predictor.features import FEATURE_NAMES, MIN_BARS

_STRICT = ConfigDict(extra="forbid")

FeatureRow = create_model(  # type: ignore[call-overload]
    "FeatureRow",
    __config__=_STRICT,
    **{name: (float, Field(..., description=f"feature `{name}`")) for name in FEATURE_NAMES},
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
    date: str | None = Field(None, description="YYYY-MM-DD; on all bars or none")
    open: float = Field(..., gt=0)
    high: float = Field(..., gt=0)
    low: float = Field(..., gt=0)
    close: float = Field(..., gt=0)
    volume: float = Field(..., ge=0)


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


class RequestInput(BaseModel):
    name: str = Field(..., description="'features' (any name) for [N, F], or a feature name")
    shape: list[int] = Field(..., min_length=1, max_length=2)
    datatype: Literal["FP32", "FP64"]
    data: list[Any] = Field(..., description="row-major, flat or nested")
    parameters: dict[str, Any] | None = None


class RequestOutput(BaseModel):
    name: Literal["probability", "label"]
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = _STRICT
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(..., min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


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


def component_schemas() -> dict[str, Any]:
    """OpenAPI components for every documented model (nested ones hoisted)."""
    out: dict[str, Any] = {}
    template = "#/components/schemas/{model}"
    for model in DOCUMENTED:
        schema = model.model_json_schema(ref_template=template)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    out["PredictRequest"] = {
        "title": "PredictRequest",
        "description": "One row (`features`) or a batch (`instances`).",
        "oneOf": [
            {"$ref": template.format(model="PredictOneRequest")},
            {"$ref": template.format(model="PredictBatchRequest")},
        ],
    }
    return out
