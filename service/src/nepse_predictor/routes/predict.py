"""/v1/predict (named features) and /v1/predict/bars (recent OHLCV bars per symbol)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response

from nepse_predictor.bars_request import BarSeries, parse_bars
from nepse_predictor.features import MIN_BARS, latest_features_of_many
from nepse_predictor.inputs import InputError, parse_v1
from nepse_predictor.model import LoadedModel
from nepse_predictor.routes import answer, body_of, replies
from nepse_predictor.routes.paths import BARS_PATH, PREDICT_PATH
from nepse_predictor.state import OFFLOAD_ROWS, Incoming, Reply, ServingState, parse_body

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
    rows = await parse_body(parse_v1, incoming.body, model.features, limit)
    probabilities = await state.predict(model, rows, len(rows), fields)
    state.record(PREDICT_PATH, request_id, model, probabilities, started, fields, rows)
    if len(probabilities) > OFFLOAD_ROWS:
        payload = await asyncio.to_thread(_render, state, model, request_id, probabilities)
    else:
        payload = _render(state, model, request_id, probabilities)
    return Reply(200, payload)


def _bar_features(recent: np.ndarray) -> np.ndarray:
    """Feature rows of the series' last bars, from their last MIN_BARS bars stacked
    (series x OHLCV x bars), all series in one pass."""
    rows = latest_features_of_many(*(recent[:, column, :] for column in range(5)))
    bad = ~np.isfinite(rows)
    if bad.any():
        index, column = (int(i) for i in np.argwhere(bad)[0])
        from nepse_predictor.features import FEATURE_NAMES

        raise InputError(
            f"series[{index}].bars",
            f"feature {FEATURE_NAMES[column]} of the last bar is not finite; check the last "
            f"{MIN_BARS} bars",
        )
    return rows.astype(np.float32)


def _parse_bars(body: bytes, max_series: int, max_bars: int) -> tuple[list[BarSeries], np.ndarray]:
    """The series, and their last MIN_BARS bars stacked (series x OHLCV x bars): the cache
    key, and what the features are computed from."""
    series = parse_bars(body, MIN_BARS, max_series, max_bars)
    recent = np.stack(
        [np.stack([s.open, s.high, s.low, s.close, s.volume])[:, -MIN_BARS:] for s in series]
    )
    return series, recent


async def predict_bars(state: ServingState, incoming: Incoming, fields: dict[str, Any]) -> Reply:
    model = state.require_model()
    started = time.perf_counter()
    limit = state.settings.max_batch_rows
    request_id = incoming.request_id
    series, recent = await parse_body(_parse_bars, incoming.body, limit, state.settings.max_bars)
    computed: list[np.ndarray] = []

    def features() -> np.ndarray:
        computed.append(_bar_features(recent))
        return computed[0]

    probabilities = await state.predict(
        model, features, len(series), fields, cache_rows=recent, cache_kind="bars"
    )
    state.record(
        BARS_PATH,
        request_id,
        model,
        probabilities,
        started,
        fields,
        computed[0] if computed else None,
    )
    extra = [{"symbol": s.symbol, "as_of": s.as_of} for s in series]
    if len(series) > OFFLOAD_ROWS:
        payload = await asyncio.to_thread(_render, state, model, request_id, probabilities, extra)
    else:
        payload = _render(state, model, request_id, probabilities, extra)
    return Reply(200, payload)


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
