"""Every path this server answers, as the route templates that label its metrics.

`PREDICTION_ROUTES` is the closed set of prediction routes: the metrics' `route` label, a
release gate's queries and the chart's alert rules take their values from it. A request that
matches no route is labelled `UNMATCHED`, never with its raw path.
"""

from __future__ import annotations

from nepse_predictor.artifacts import MODEL_NAME

PREDICT_PATH = "/v1/predict"
BARS_PATH = "/v1/predict/bars"
ROUTE_INFER = "/v2/models/{model_name}/infer"
ROUTE_VERSION_INFER = "/v2/models/{model_name}/versions/{model_version}/infer"
# The exact path of inference on this server's model, answered on the hot path.
INFER_PATH = ROUTE_INFER.format(model_name=MODEL_NAME)

PREDICTION_ROUTES: tuple[str, ...] = (PREDICT_PATH, BARS_PATH, ROUTE_INFER, ROUTE_VERSION_INFER)
UNMATCHED = "unmatched"
