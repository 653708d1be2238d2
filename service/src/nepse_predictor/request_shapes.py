"""The request bodies the service accepts, defined once: these types validate every body
(`request_decoding.decode`) and are the request schemas of the OpenAPI document
(`openapi_components`).

What a type cannot say (len(data) == prod(shape), high >= low, dates in order, one tensor per
feature) is checked after decoding, by the parser of each route: `v1_request`, `bars_request`,
`oip_request`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, defstruct

from nepse_predictor.features import FEATURE_NAMES, MIN_BARS
from nepse_predictor.input_error import FLOAT32_MAX

Float32 = Annotated[
    float, Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX, description="a finite float32 number")
]
Price = Annotated[float, Meta(gt=0, le=FLOAT32_MAX)]
Volume = Annotated[float, Meta(ge=0, le=FLOAT32_MAX)]
Size = Annotated[int, Meta(ge=0)]


class Strict(Struct, forbid_unknown_fields=True):
    """A JSON object whose every member is one of its fields."""


# --- /v1/predict ----------------------------------------------------------------------------

if TYPE_CHECKING:
    # A type checker cannot see the fields made from FEATURE_NAMES; it knows the class.
    class FeatureRow(Strict):
        """One float32 value per feature, each under its name."""

else:
    FeatureRow = defstruct(
        "FeatureRow",
        [
            (name, Annotated[Float32, Meta(description=f"feature `{name}`")])
            for name in FEATURE_NAMES
        ],
        bases=(Strict,),
    )


class PredictRequest(Strict):
    """One row (`features`) or a batch (`instances`, at most NEPSE_MAX_BATCH_ROWS rows)."""

    features: FeatureRow | UnsetType = UNSET
    instances: Annotated[list[FeatureRow], Meta(min_length=1)] | UnsetType = UNSET


# --- /v1/predict/bars -----------------------------------------------------------------------


class Bar(Strict):
    open: Price
    high: Annotated[Price, Meta(description="at least open, close and low")]
    low: Annotated[Price, Meta(description="at most open and close")]
    close: Price
    volume: Volume
    date: (
        Annotated[
            str,
            Meta(
                description="a date (YYYY-MM-DD) or an ISO 8601 timestamp for intraday bars; "
                "on all bars or none, increasing"
            ),
        ]
        | None
    ) = None


class BarSeries(Strict):
    symbol: Annotated[str, Meta(min_length=1, max_length=64)]
    bars: Annotated[list[Bar], Meta(min_length=MIN_BARS, description="oldest first")]


class BarsRequest(Strict):
    series: Annotated[list[BarSeries], Meta(min_length=1)]


# --- /v2/models/{name}/infer (Open Inference Protocol) --------------------------------------


class InputParameters(Struct):
    """Parameters of an input; the protocol allows any, this server reads one."""

    binary_data_size: (
        Annotated[
            Size,
            Meta(
                description="binary tensor data extension: the input's bytes follow the JSON "
                "header (Inference-Header-Content-Length), in input order; `data` is left out"
            ),
        ]
        | None
    ) = None


class RequestInput(Strict):
    name: Annotated[
        str, Meta(description="'features' (any name) for [N, F], or a feature name for [N]")
    ]
    shape: Annotated[list[Size], Meta(min_length=1, max_length=2)]
    datatype: Literal["FP32", "FP64"]
    data: (
        Annotated[
            list[Float32 | list[Float32]],
            Meta(description="row-major, flat or nested; prod(shape) numbers"),
        ]
        | None
    ) = None
    parameters: InputParameters | None = None


class OutputParameters(Struct):
    binary_data: Annotated[bool, Meta(description="return this output as raw bytes")] | None = None
    classification: (
        Annotated[int, Meta(description="the classification extension is not supported: 0")] | None
    ) = None


class RequestOutput(Strict):
    name: Literal["probability", "label"]
    parameters: OutputParameters | None = None


class RequestParameters(Struct):
    binary_data_output: (
        Annotated[
            bool, Meta(description="return every output as raw bytes unless it says otherwise")
        ]
        | None
    ) = None


class InferenceRequest(Strict):
    inputs: Annotated[list[RequestInput], Meta(min_length=1)]
    id: str | None = None
    model_name: (
        Annotated[str, Meta(description="as KServe's client sends it; must match the path's")]
        | None
    ) = None
    model_version: (
        Annotated[str, Meta(description="must match the path's, if it has one")] | None
    ) = None
    parameters: RequestParameters | None = None
    outputs: Annotated[list[RequestOutput], Meta(min_length=1)] | None = None


REQUEST_SHAPES = (PredictRequest, BarsRequest, InferenceRequest)
