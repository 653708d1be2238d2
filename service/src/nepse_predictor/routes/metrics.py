"""Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from nepse_predictor.metrics import CONTENT_TYPE
from nepse_predictor.routes import serving_state

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(serving_state(request).metrics.render(), media_type=CONTENT_TYPE)
