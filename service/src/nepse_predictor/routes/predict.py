"""FastAPI routes of /v1/predict and /v1/predict/bars (`handlers.predict` answers them)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from nepse_predictor.handlers.predict import predict_bars, predict_rows
from nepse_predictor.paths import BARS_PATH, PREDICT_PATH
from nepse_predictor.routes import answer, body_of, replies

router = APIRouter(tags=["predict"])


@router.post(
    PREDICT_PATH,
    summary="Predict from named features: one row or a batch",
    openapi_extra=body_of("PredictRequest"),
    responses=replies("PredictResponse", 413, 422, 503),
    response_class=Response,
)
async def predict(request: Request) -> Response:
    return await answer(request, predict_rows)


@router.post(
    BARS_PATH,
    summary="Predict from recent OHLCV bars per symbol (features computed by the service)",
    openapi_extra=body_of("BarsRequest"),
    responses=replies("BarsResponse", 413, 422, 503),
    response_class=Response,
)
async def predict_from_bars(request: Request) -> Response:
    return await answer(request, predict_bars)
