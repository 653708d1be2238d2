"""The loaded model, evaluated by one of three backends:

- `trees`: the service's compiled evaluator (`_trees.c`) over the trees of model.ubj
  (`tree_ensemble.py`), the fastest at every batch size;
- `onnx`: ONNX Runtime over model.onnx;
- `xgboost`: XGBoost's own booster over model.ubj (needs the xgboost extra).

`auto`, the default, is `trees` where the package was built with its compiled part and the
model is a booster it takes (binary:logistic, numerical splits), and `onnx` otherwise, with the
reason logged. Every backend takes float32 rows (rows x features, in
`features.FEATURE_NAMES` order) and returns the probability that the next session closes
higher; they agree to 1e-5 (checked at training time and in the tests). Nothing here runs at
import: `load_model` verifies the model directory against its checksum manifest first and then
builds the backend, importing only that backend's runtime.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nepse_predictor.artifacts import (
    MODEL_NAME,
    ONNX_FILE,
    XGBOOST_FILE,
    verify_model_dir,
)
from nepse_predictor.errors import ModelIntegrityError
from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.onnx_export import p_up_of
from nepse_predictor.tree_ensemble import UnsupportedTrees

log = logging.getLogger("nepse_predictor.model")

BACKENDS = ("auto", "trees", "onnx", "xgboost")
THREAD_ROWS = {"trees": 4096, "onnx": 512, "xgboost": 512}


def compiled_trees_available() -> bool:
    try:
        import nepse_predictor._trees  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """The backend `auto` stands for here; any other name as it is."""
    if backend != "auto":
        return backend
    return "trees" if compiled_trees_available() else "onnx"


@dataclass
class LoadedModel:
    """A verified model version, ready to predict."""

    name: str
    version: str
    backend: str
    features: tuple[str, ...]
    threshold: float
    metadata: dict[str, Any]
    directory: Path
    predict_proba: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    # Batches above this many rows are predicted on a thread (every backend releases the
    # interpreter lock for them): about a millisecond of this backend's work.
    thread_rows: int = 512

    @property
    def n_features(self) -> int:
        return len(self.features)


def _onnx_predictor(path: Path, n_features: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Latency over throughput: a request's rows are few and requests run side by side on the
    # event loop, so one thread per call and no spinning threads stealing the loop's core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelIntegrityError(f"{path}: ONNX Runtime cannot load it: {exc}") from None

    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelIntegrityError(f"{path}: expected one input tensor, found {len(inputs)}")
    shape = inputs[0].shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != n_features):
        raise ModelIntegrityError(
            f"{path}: input {inputs[0].name!r} has shape {shape}; expected [N, {n_features}]"
        )
    if inputs[0].type != "tensor(float)":
        raise ModelIntegrityError(f"{path}: input type is {inputs[0].type}; expected float32")

    outputs = session.get_outputs()
    probability = [o for o in outputs if o.type == "tensor(float)"]
    if not probability:
        raise ModelIntegrityError(
            f"{path}: no float tensor output among {[o.name for o in outputs]} "
            "(a ZipMap output is not supported; export without ZipMap)"
        )
    chosen = next((o for o in probability if "prob" in o.name.lower()), probability[-1])
    output_names = [chosen.name]
    input_name = inputs[0].name
    # The bound C++ `run` skips the Python wrapper's per-call argument checks (names and types
    # were checked once above); the public `run` is used if that ever stops working.
    run = session.run
    bound = getattr(session, "_sess", None)
    if bound is not None:
        try:
            bound.run(output_names, {input_name: np.zeros((1, n_features), np.float32)}, None)
            run = bound.run
        except Exception:  # a different onnxruntime: stay on the public API
            run = session.run
    run_options = None

    # `_session` is never passed: as a default it keeps the session alive with the function,
    # since the bound `run` may hold only its C++ half.
    def predict(rows: np.ndarray, _session: object = session) -> np.ndarray:
        return p_up_of(run(output_names, {input_name: rows}, run_options)[0])

    return predict


def _trees_predictor(path: Path, n_features: int) -> Callable[[np.ndarray], np.ndarray]:
    if not compiled_trees_available():
        raise ModelIntegrityError(
            "NEPSE_BACKEND=trees needs the package's compiled evaluator, which this install "
            "lacks (it was built without a C compiler): reinstall with one, or use "
            "NEPSE_BACKEND=onnx"
        )
    from nepse_predictor.tree_ensemble import trees_predictor

    return trees_predictor(path, n_features)


def _xgboost_predictor(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    try:
        import xgboost
    except ImportError:
        raise ModelIntegrityError(
            "NEPSE_BACKEND=xgboost needs the xgboost package: install nepse-predictor[xgboost] "
            "or build the image with --build-arg BACKENDS=onnx,xgboost"
        ) from None

    try:
        booster = xgboost.Booster(model_file=str(path))
    except xgboost.core.XGBoostError as exc:
        raise ModelIntegrityError(f"{path}: XGBoost cannot load it: {exc}") from None
    booster.set_param({"nthread": min(2, os.cpu_count() or 1)})

    def predict(rows: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(rows, validate_features=False)).reshape(-1)

    return predict


def load_model(model_dir: str | Path | None, backend: str = "auto") -> LoadedModel:
    """Verify `model_dir` against its manifest and load it with `backend`.

    Raises ModelIntegrityError whose message names the file and the problem.
    """
    if model_dir is None:
        raise ModelIntegrityError(
            "no model directory configured: set NEPSE_MODEL_DIR (or MODEL_PATH) to a "
            "models/<version> directory"
        )
    if backend not in BACKENDS:
        raise ModelIntegrityError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    automatic = backend == "auto"
    backend = resolve_backend(backend)
    directory = Path(model_dir)
    metadata = verify_model_dir(directory)
    features = tuple(str(name) for name in metadata["features"])
    if features != FEATURE_NAMES:
        missing = [n for n in FEATURE_NAMES if n not in features]
        extra = [n for n in features if n not in FEATURE_NAMES]
        raise ModelIntegrityError(
            f"{directory / 'metadata.json'}: features {list(features)} do not match the "
            f"service's feature function (missing {missing}, unknown {extra}, or another order)"
        )
    if metadata.get("name", MODEL_NAME) != MODEL_NAME:
        raise ModelIntegrityError(
            f"{directory / 'metadata.json'}: name is {metadata['name']!r}, expected {MODEL_NAME!r}"
        )
    threshold = float(metadata.get("threshold", 0.5))
    if backend == "trees":
        try:
            predict = _trees_predictor(directory / XGBOOST_FILE, len(features))
        except UnsupportedTrees as exc:
            if not automatic:
                raise
            log.warning("serving with ONNX Runtime (NEPSE_BACKEND=auto): %s", exc)
            backend = "onnx"
    if backend == "onnx":
        predict = _onnx_predictor(directory / ONNX_FILE, len(features))
    elif backend == "xgboost":
        predict = _xgboost_predictor(directory / XGBOOST_FILE)

    # One call on a zero row loads everything lazily initialised, before the first request.
    probe = predict(np.zeros((1, len(features)), dtype=np.float32))
    if probe.shape != (1,) or not np.isfinite(probe).all():
        raise ModelIntegrityError(
            f"{directory}: the {backend} backend returned {probe!r} for one row; expected one "
            "probability"
        )
    return LoadedModel(
        name=MODEL_NAME,
        version=str(metadata["version"]),
        backend=backend,
        features=features,
        threshold=threshold,
        metadata=metadata,
        directory=directory,
        predict_proba=predict,
        thread_rows=THREAD_ROWS[backend],
    )
