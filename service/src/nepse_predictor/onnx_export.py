"""ONNX export of the trained classifier and the parity check that guards it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ONNX_INPUT = "features"
ONNX_TARGET_OPSET = 15


def export_onnx(classifier: Any, n_features: int, path: Path) -> dict[str, Any]:
    """Write the classifier as ONNX; return the graph's input and output names."""
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_xgboost(
        classifier,
        initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))],
        target_opset=ONNX_TARGET_OPSET,
    )
    # The converter names the graph at random; a fixed name keeps the file reproducible.
    model.graph.name = "nepse_predictor"
    path.write_bytes(model.SerializeToString())
    outputs = [output.name for output in model.graph.output]
    return {
        "input": ONNX_INPUT,
        "outputs": outputs,
        "probabilities": outputs[-1],
        "opset": ONNX_TARGET_OPSET,
    }


def onnx_parity(path: Path, x: np.ndarray, expected_p_up: np.ndarray) -> dict[str, Any]:
    """Largest |p_onnx - p_xgboost| over held-out rows."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities = session.run(None, {ONNX_INPUT: x.astype(np.float32)})[-1]
    p_up = np.asarray(probabilities, dtype=np.float64)[:, 1]
    return {
        "rows": len(x),
        "max_abs_diff": float(np.max(np.abs(p_up - expected_p_up))) if len(x) else 0.0,
    }
