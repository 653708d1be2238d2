"""The routes whose answers a release is judged by: the service's prediction routes.

The service defines them next to its routes (`nepse_predictor.paths.PREDICTION_ROUTES`)
and labels its request metrics with exactly these route templates; the gate counts them and
only them, so health, readiness, metadata and unmatched requests (a readiness 503 while a
model loads, a scanner's 404s) never count as a candidate's errors. This package does not
depend on the service's, so the list is repeated here and in the chart's alert rules, and a
test proves the three agree.
"""

from __future__ import annotations

import re

PREDICTION_ROUTES: tuple[str, ...] = (
    "/v1/predict",
    "/v1/predict/bars",
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{model_version}/infer",
)


def promql_route_matcher(routes: tuple[str, ...] = PREDICTION_ROUTES) -> str:
    """`route=~"..."` matching exactly these route labels."""
    return 'route=~"' + "|".join(re.escape(r).replace("\\", "\\\\") for r in routes) + '"'
