"""Liveness and readiness, at the chapter's probe paths."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from nepse_predictor.routes import json_response, serving_state

router = APIRouter(tags=["health"])

_ALIVE = orjson.dumps({"status": "ok"})


@router.get(
    "/health",
    summary="Liveness: 200 while the process runs, model or not",
    responses={200: {"description": "The process is up."}},
)
async def health() -> Response:
    return json_response(_ALIVE)


@router.get(
    "/ready",
    summary="Readiness: 200 only when a verified model is loaded",
    responses={
        200: {"description": "A verified model is loaded."},
        503: {"description": "No model is loaded; `reason` says why."},
    },
)
async def ready(request: Request) -> Response:
    state = serving_state(request)
    model = state.model
    if model is None:
        return json_response(
            orjson.dumps({"ready": False, "reason": state.model_error, "track": state.track}),
            503,
        )
    answer = {
        "ready": True,
        "model_version": model.version,
        "backend": model.backend,
        "track": state.track,
    }
    choice = state.version_choice
    if choice is not None:
        answer["newest"] = choice.chosen == choice.newest
        answer["skipped"] = [
            {"version": directory.name, "reason": reason} for directory, reason in choice.skipped
        ]
    return json_response(orjson.dumps(answer))
