"""/v1/predict (named features) and /v1/predict/bars (recent OHLCV bars per symbol)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response

from nepse_predictor.bars_request import parse_bars_request
from nepse_predictor.model import LoadedModel
from nepse_predictor.routes import answer, body_of, replies
from nepse_predictor.routes.paths import BARS_PATH, PREDICT_PATH
from nepse_predictor.state import OFFLOAD_ROWS, Handler, Incoming, Reply, ServingState
from nepse_predictor.v1_request import parse_v1

_NUMPY = orjson.OPT_SERIALIZE_NUMPY

router = APIRouter(tags=["predict"])


def _render(
    state: ServingState,
    model: LoadedModel,
    request_id: str,
    probabilities: np.ndarray,
    extra: list[dict[str, Any]] | None = None,
) -> bytes:
    threshold = model.threshold
    predictions = []
    for index, probability in enumerate(probabilities):
        up = bool(probability >= threshold)
        item: dict[str, Any] = extra[index] if extra is not None else {}
        item["probability"] = probability
        item["label"] = int(up)
        item["direction"] = "up" if up else "down"
        predictions.append(item)
    return orjson.dumps(
        {
            "model_name": model.name,
            "model_version": model.version,
            "track": state.track,
            "request_id": request_id,
            "threshold": threshold,
            "predictions": predictions,
        },
        option=_NUMPY,
    )


async def predict_rows(state: ServingState, incoming: Incoming, fields: dict[str, Any]) -> Reply:
    model = state.require_model()
    started = time.perf_counter()
    limit = state.settings.max_batch_rows
    request_id = incoming.request_id
    rows = await state.parse_body(parse_v1, incoming.body, limit)
    probabilities = await state.predict(model, rows, len(rows), fields)
    state.record(PREDICT_PATH, request_id, model, probabilities, started, fields, rows)
    if len(probabilities) > OFFLOAD_ROWS:
        payload = await asyncio.to_thread(_render, state, model, request_id, probabilities)
    else:
        payload = _render(state, model, request_id, probabilities)
    return Reply(200, payload)


async def predict_bars(state: ServingState, incoming: Incoming, fields: dict[str, Any]) -> Reply:
    model = state.require_model()
    started = time.perf_counter()
    limit = state.settings.max_batch_rows
    request_id = incoming.request_id
    extra, recent, rows = await state.parse_body(
        parse_bars_request, incoming.body, limit, state.settings.max_bars
    )
    probabilities = await state.predict(
        model, rows, len(rows), fields, cache_rows=recent, cache_kind="bars"
    )
    state.record(BARS_PATH, request_id, model, probabilities, started, fields, rows)
    if len(rows) > OFFLOAD_ROWS:
        payload = await asyncio.to_thread(_render, state, model, request_id, probabilities, extra)
    else:
        payload = _render(state, model, request_id, probabilities, extra)
    return Reply(200, payload)


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
