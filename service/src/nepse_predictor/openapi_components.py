"""The OpenAPI document's schemas: the request shapes that validate every body and the
response shapes, with this server's limits filled in. Built when /openapi.json is first asked
for, not at start-up."""

from __future__ import annotations

from typing import Any

import msgspec

from nepse_predictor.features import MIN_BARS
from nepse_predictor.request_shapes import REQUEST_SHAPES
from nepse_predictor.response_shapes import RESPONSE_SHAPES

REF_TEMPLATE = "#/components/schemas/{name}"


def component_schemas(max_rows: int, max_bars: int) -> dict[str, Any]:
    """Every request and response shape by name, nested ones included."""
    _, components = msgspec.json.schema_components(
        (*REQUEST_SHAPES, *RESPONSE_SHAPES), ref_template=REF_TEMPLATE
    )
    predict = components["PredictRequest"]
    predict["properties"]["instances"]["maxItems"] = max_rows
    predict["oneOf"] = [{"required": ["features"]}, {"required": ["instances"]}]
    components["BarsRequest"]["properties"]["series"]["maxItems"] = min(
        max_rows, max_bars // MIN_BARS
    )
    return components
