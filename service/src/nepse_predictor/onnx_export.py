"""ONNX export of the trained classifier and the parity check that guards it.

onnxmltools writes a binary XGBoost classifier as a TreeEnsembleClassifier, which ONNX Runtime
evaluates through its many-class path and which also computes a label output nobody reads.
The export keeps the converter's trees and writes them as what they are for one class: a
TreeEnsembleRegressor of the margin followed by a Sigmoid, one float output `probability`
([N, 1], P(up)). ONNX Runtime's single-target path runs it in about four fifths of the time on
large batches; the parity check below proves the probabilities unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ONNX_INPUT = "features"
ONNX_OUTPUT = "probability"
ONNX_TARGET_OPSET = 15
ONNX_ML_OPSET = 3

_TREE_FIELDS = (
    "nodes_falsenodeids",
    "nodes_featureids",
    "nodes_missing_value_tracks_true",
    "nodes_modes",
    "nodes_nodeids",
    "nodes_treeids",
    "nodes_truenodeids",
    "nodes_values",
)


def _margin_and_sigmoid(model: Any) -> Any:
    """The converter's binary TreeEnsembleClassifier as TreeEnsembleRegressor + Sigmoid."""
    from onnx import TensorProto, helper

    [classifier] = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    attributes = {a.name: helper.get_attribute_value(a) for a in classifier.attribute}
    if (
        list(attributes.get("classlabels_int64s", [])) != [0, 1]
        or set(attributes["class_ids"]) != {0}
        or attributes.get("post_transform") != b"LOGISTIC"
        or len(attributes.get("base_values", [0.0])) != 1
    ):
        raise ValueError("expected a binary classifier with one logistic score")
    regressor = helper.make_node(
        "TreeEnsembleRegressor",
        [ONNX_INPUT],
        ["margin"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=list(attributes.get("base_values", [0.0])),
        target_ids=attributes["class_ids"],
        target_nodeids=attributes["class_nodeids"],
        target_treeids=attributes["class_treeids"],
        target_weights=attributes["class_weights"],
        **{name: attributes[name] for name in _TREE_FIELDS if name in attributes},
    )
    sigmoid = helper.make_node("Sigmoid", ["margin"], [ONNX_OUTPUT])
    n_features = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    graph = helper.make_graph(
        [regressor, sigmoid],
        "nepse_predictor",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, [None, 1])],
    )
    out = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", ONNX_TARGET_OPSET),
            helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET),
        ],
        producer_name="nepse-predictor",
    )
    out.ir_version = model.ir_version
    return out


def export_onnx(classifier: Any, n_features: int, path: Path) -> dict[str, Any]:
    """Write the classifier as ONNX; return the graph's input and output names."""
    import onnx
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    converted = convert_xgboost(
        classifier,
        initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))],
        target_opset=ONNX_TARGET_OPSET,
    )
    model = _margin_and_sigmoid(converted)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return {
        "input": ONNX_INPUT,
        "outputs": [ONNX_OUTPUT],
        "probabilities": ONNX_OUTPUT,
        "opset": ONNX_TARGET_OPSET,
        "ml_opset": ONNX_ML_OPSET,
    }


def p_up_of(output: np.ndarray) -> np.ndarray:
    """P(up) from the graph's float output: [N, 1] from this export, [N, 2] from a
    classifier export (model directories written before it), where it is the second column."""
    if output.ndim == 2 and output.shape[1] == 2:
        return output[:, 1]
    return output.reshape(-1)


def onnx_parity(path: Path, x: np.ndarray, expected_p_up: np.ndarray) -> dict[str, Any]:
    """Largest |p_onnx - p_xgboost| over held-out rows."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [output] = session.run([ONNX_OUTPUT], {ONNX_INPUT: x.astype(np.float32)})
    p_up = p_up_of(np.asarray(output, dtype=np.float64))
    return {
        "rows": len(x),
        "max_abs_diff": float(np.max(np.abs(p_up - expected_p_up))) if len(x) else 0.0,
    }
