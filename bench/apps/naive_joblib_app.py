"""The chapter's serving pattern, as a baseline: FastAPI + a joblib-pickled XGBoost estimator.

The model is loaded when the module is imported (MODEL_PATH names the .joblib file, as in the
chapter's compose file), the body is validated by pydantic models, and every request calls
`predict_proba` on the scikit-learn wrapper from a plain `def` endpoint (FastAPI runs it in its
thread pool). It serves the Open Inference Protocol route so the benchmark can send it exactly
the same request as the other servers:

    MODEL_PATH=models/<version>/model.joblib uvicorn --app-dir bench/apps naive_joblib_app:app

Unpickling runs code, so the file is loaded only when its checksum matches the model
directory's manifest (the project's rule for joblib artifacts).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from nepse_predictor.artifacts import load_joblib_estimator

MODEL_NAME = "nepse-predictor"

model = load_joblib_estimator(Path(os.environ["MODEL_PATH"]).parent)

app = FastAPI(title="naive joblib predictor")


class InferInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class RequestOutput(BaseModel):
    name: str


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[InferInput]
    outputs: list[RequestOutput] | None = None


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get(f"/v2/models/{MODEL_NAME}/ready")
def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post(f"/v2/models/{MODEL_NAME}/infer")
def infer(request: InferRequest) -> dict:
    tensor = request.inputs[0]
    features = np.array(tensor.data).reshape(tensor.shape)
    probability = model.predict_proba(features)[:, 1]
    return {
        "model_name": MODEL_NAME,
        "outputs": [
            {
                "name": "probability",
                "shape": [len(probability)],
                "datatype": "FP32",
                "data": probability.tolist(),
            }
        ],
    }
