"""The framework floor: a FastAPI endpoint that reads the inference request and answers a constant.

It serves the same Open Inference Protocol route as the real servers and receives the same body,
but does no parsing and no model work, so its requests/s is the most any FastAPI + uvicorn
service can reach on this machine. The benchmark reports the real service as a ratio of it.

    uvicorn --app-dir bench/apps hello_app:app --no-access-log
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

MODEL_NAME = "nepse-predictor"
ANSWER = (
    b'{"model_name":"nepse-predictor","outputs":[{"name":"probability","shape":[1],'
    b'"datatype":"FP32","data":[0.5]}]}'
)

app = FastAPI(title="hello", docs_url=None, redoc_url=None, openapi_url=None)


@app.get(f"/v2/models/{MODEL_NAME}/ready")
async def ready() -> Response:
    return Response(status_code=200)


@app.post(f"/v2/models/{MODEL_NAME}/infer")
async def infer(request: Request) -> Response:
    await request.body()
    return Response(content=ANSWER, media_type="application/json")
