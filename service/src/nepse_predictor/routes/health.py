"""FastAPI routes of liveness and readiness (`handlers.probes` answers them)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from nepse_predictor.handlers import probes
from nepse_predictor.paths import HEALTH_PATH, READY_PATH
from nepse_predictor.routes import response_of, serving_state

router = APIRouter(tags=["health"])


@router.get(
    HEALTH_PATH,
    summary="Liveness: 200 while the process runs, model or not",
    responses={200: {"description": "The process is up."}},
)
async def health(request: Request) -> Response:
    return response_of(probes.health(serving_state(request)))


@router.get(
    READY_PATH,
    summary="Readiness: 200 only when a verified model is loaded",
    responses={
        200: {"description": "A verified model is loaded."},
        503: {"description": "No model is loaded; `reason` says why."},
    },
)
async def ready(request: Request) -> Response:
    return response_of(probes.ready(serving_state(request)))
