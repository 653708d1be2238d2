"""FastAPI route of the Prometheus exposition (`handlers.probes` answers it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from nepse_predictor.handlers import probes
from nepse_predictor.paths import METRICS_PATH
from nepse_predictor.routes import response_of, serving_state

router = APIRouter(tags=["metrics"])


@router.get(METRICS_PATH, summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return response_of(probes.metrics(serving_state(request)))
