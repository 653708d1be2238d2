"""FastAPI routes of /v1/predict and /v1/predict/bars (`handlers.predict` answers them)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from nepse_predictor.handlers.predict import predict_bars, predict_rows
from nepse_predictor.paths import BARS_PATH, PREDICT_PATH
from nepse_predictor.routes import answer, body_of, replies
from nepse_predictor.state import Handler

router = APIRouter(tags=["predict"])


def _post(path: str, name: str, handler: Handler, shape: str, summary: str) -> None:
    """A prediction route: `{shape}Request` in, `{shape}Response` out, `handler` answering.
    `name` names the endpoint (and so the OpenAPI operation)."""

    async def endpoint(request: Request) -> Response:
        return await answer(request, handler)

    router.post(
        path,
        name=name,
        summary=summary,
        openapi_extra=body_of(f"{shape}Request"),
        responses=replies(f"{shape}Response", 413, 422, 503),
        response_class=Response,
    )(endpoint)


_post(
    PREDICT_PATH,
    "predict",
    predict_rows,
    "Predict",
    "Predict from named features: one row or a batch",
)
_post(
    BARS_PATH,
    "predict_from_bars",
    predict_bars,
    "Bars",
    "Predict from recent OHLCV bars per symbol (features computed by the service)",
)
