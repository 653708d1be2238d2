"""A model version that loads and passes its checks but fails every batch: made from a real
trained version whose ONNX graph is replaced by one that reshapes its input to a single row.
Single-row requests are answered; batches fail with an ONNX Runtime error (HTTP 500). The
release gate and the Argo CD tier use it as the candidate that must be rolled back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from nepse_predictor import artifacts


def one_row_only_model(source: Path, target: Path, version: str | None = None) -> Path:
    """Copy the model in ``source`` to ``target`` (renamed ``version`` when given) with the
    one-row graph; the manifest is rewritten so that it verifies."""
    import onnx
    from onnx import TensorProto, helper

    metadata = json.loads((source / "metadata.json").read_text())
    width = len(metadata["features"])
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "one_row"], ["flat"]),
            helper.make_node("ReduceMean", ["flat", "axes"], ["mean"], keepdims=1),
            helper.make_node("Sigmoid", ["mean"], ["probabilities"]),
        ],
        "one_row_only",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 1])],
        [
            helper.make_tensor("one_row", TensorProto.INT64, [2], [1, width]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    shutil.copytree(source, target)
    onnx.save(model, target / "model.onnx")
    if version is not None:
        metadata["version"] = version
        (target / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
        for path in sorted(target.iterdir())
        if path.is_file() and path.name != artifacts.MANIFEST
    ]
    (target / artifacts.MANIFEST).write_text("".join(lines))
    return target
