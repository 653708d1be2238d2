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

HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"
ROUTE_SERVER_METADATA = "/v2"
ROUTE_SERVER_LIVE = "/v2/health/live"
ROUTE_SERVER_READY = "/v2/health/ready"
ROUTE_MODEL_METADATA = "/v2/models/{model_name}"
ROUTE_VERSION_METADATA = "/v2/models/{model_name}/versions/{model_version}"
ROUTE_MODEL_READY = "/v2/models/{model_name}/ready"
ROUTE_VERSION_READY = "/v2/models/{model_name}/versions/{model_version}/ready"
DOCS_PATH = "/docs"
DOCS_OAUTH_PATH = "/docs/oauth2-redirect"
OPENAPI_PATH = "/openapi.json"

# Every route template the server answers: the metrics' `route` label takes its values from
# here (tests check that the application's routes are exactly these).
ROUTE_TEMPLATES: tuple[str, ...] = (
    *PREDICTION_ROUTES,
    HEALTH_PATH,
    READY_PATH,
    METRICS_PATH,
    ROUTE_SERVER_METADATA,
    ROUTE_SERVER_LIVE,
    ROUTE_SERVER_READY,
    ROUTE_MODEL_METADATA,
    ROUTE_VERSION_METADATA,
    ROUTE_MODEL_READY,
    ROUTE_VERSION_READY,
    DOCS_PATH,
    DOCS_OAUTH_PATH,
    OPENAPI_PATH,
)

# What the outer ASGI layer leaves in a request's scope for the FastAPI routes.
REQUEST_ID_KEY = "nepse.request_id"
FIELDS_KEY = "nepse.log_fields"
HEADER_LENGTH_KEY = "nepse.inference_header_length"
# Set by http_protocol once the request's whole body has arrived.
BODY_RECEIVED_KEY = "nepse.body_received"
# Set by http_protocol: the connection's writer (`connection_writer.ConnectionWriter`); a
# response written between its hold_for() and release() leaves in one send.
WRITER_KEY = "nepse.writer"
