"""Liveness, readiness and the Prometheus exposition, at the chapter's probe paths."""

from __future__ import annotations

from typing import Any

import orjson

from nepse_predictor.metrics import CONTENT_TYPE
from nepse_predictor.state import Reply, ServingState

_ALIVE = orjson.dumps({"status": "ok"})
_METRICS = ((b"content-type", CONTENT_TYPE.encode()),)


def health(state: ServingState) -> Reply:
    """200 while the process runs, model or not."""
    return Reply(200, _ALIVE)


def ready(state: ServingState) -> Reply:
    """200 only when a verified model is loaded; else 503 and the reason."""
    model = state.model
    if model is None:
        return Reply(
            503,
            orjson.dumps({"ready": False, "reason": state.model_error, "track": state.track}),
        )
    answer: dict[str, Any] = {
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
    return Reply(200, orjson.dumps(answer))


def metrics(state: ServingState) -> Reply:
    return Reply(200, state.metrics.render(), _METRICS)
