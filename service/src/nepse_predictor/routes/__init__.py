"""The FastAPI routes, one module per group: health, predict (v1), oip (Open Inference
Protocol v2), metrics; `paths` names them all. Each route calls the `handlers` function that
`middleware.ServingMiddleware` calls on the hot path, and carries the OpenAPI document. The
application they make (`api`) is built off the start-up path (see `app`)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from nepse_predictor.paths import FIELDS_KEY, HEADER_LENGTH_KEY, REQUEST_ID_KEY
from nepse_predictor.state import Handler, Incoming, Reply, ServingState, run_handler

JSON = "application/json"


def serving_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving  # set by api.build_api
    return state


async def answer(
    request: Request,
    handler: Handler,
    model_name: str | None = None,
    model_version: str | None = None,
) -> Response:
    """Run a prediction handler for a FastAPI route."""
    state = serving_state(request)
    incoming = Incoming(
        await request.body(),
        request.scope.get(REQUEST_ID_KEY) or "-",
        model_name,
        model_version,
        request.scope.get(HEADER_LENGTH_KEY),
    )
    fields = request.scope.setdefault(FIELDS_KEY, {})
    return response_of(await run_handler(handler, state, incoming, fields))


def response_of(reply: Reply) -> Response:
    if not reply.headers:
        return Response(reply.body, status_code=reply.status, media_type=JSON)
    headers = {name.decode(): value.decode() for name, value in reply.headers}
    return Response(reply.body, status_code=reply.status, headers=headers)


def _ref(schema: str) -> dict[str, Any]:
    return {"content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def body_of(schema: str) -> dict[str, Any]:
    """openapi_extra declaring a JSON request body (schemas: `openapi_components`)."""
    return {"requestBody": {"required": True, **_ref(schema)}}


def replies(ok: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: `ok` schema for 200 and the error schema for each error status."""
    described = {
        413: "The body or the batch is larger than the configured limits.",
        422: "The body is not valid; `field` names the offending field.",
        503: "No verified model is loaded.",
        404: "No such model or version on this server.",
    }
    out: dict[int | str, dict[str, Any]] = {200: {"description": "OK", **_ref(ok)}}
    for status in errors:
        out[status] = {"description": described[status], **_ref("ErrorResponse")}
    return out
