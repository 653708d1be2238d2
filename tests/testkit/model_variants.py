"""Model versions made from a real trained version, for releases that must go wrong (or right)
in one known way. Each copy keeps the source's files, takes a new version name if given, and
gets a rewritten manifest so that it verifies and loads like any other version.

- ``renamed_model``: the same model under another version name (predicts exactly the same).
- ``one_row_only_model``: a graph that reshapes its input to a single row. Single-row requests
  are answered; batches fail with an ONNX Runtime error (HTTP 500). The release gate, the
  Argo CD tier and the autopilot scenarios use it as the candidate that must be rolled back.
  Its booster (model.ubj) is re-saved as binary:logitraw, a kind the compiled trees do not
  take, so the default backend (`auto`) serves this graph, defect and all.
- ``inverted_model``: every prediction is 1 - the source's, so every predicted direction is
  the opposite: a shadow that disagrees with stable. Both files carry it: the graph ends in
  ``1 - p``, and the booster's leaf values and base margin are negated.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from nepse_predictor import artifacts


def renamed_model(source: Path, target: Path, version: str) -> Path:
    shutil.copytree(source, target)
    _finish(target, version)
    return target


def one_row_only_model(source: Path, target: Path, version: str | None = None) -> Path:
    """Copy the model in ``source`` to ``target`` (renamed ``version`` when given) with the
    one-row graph."""
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
    _edit_booster(target, _as_logitraw)
    _finish(target, version)
    return target


def _edit_booster(target: Path, change) -> None:
    """Rewrite the copy's model.ubj through XGBoost's JSON form with ``change`` applied."""
    import xgboost

    booster_file = target / artifacts.XGBOOST_FILE
    json_file = target / "booster.json"
    xgboost.Booster(model_file=str(booster_file)).save_model(str(json_file))
    model = json.loads(json_file.read_text())
    change(model)
    json_file.write_text(json.dumps(model))
    xgboost.Booster(model_file=str(json_file)).save_model(str(booster_file))
    json_file.unlink()


def _as_logitraw(model: dict) -> None:
    model["learner"]["objective"]["name"] = "binary:logitraw"


def _negated(model: dict) -> None:
    learner = model["learner"]
    base = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
    learner["learner_model_param"]["base_score"] = f"[{1 - base!r}]"
    for tree in learner["gradient_booster"]["model"]["trees"]:
        for node, left in enumerate(tree["left_children"]):
            if left == -1:
                tree["split_conditions"][node] = -tree["split_conditions"][node]
                tree["base_weights"][node] = -tree["base_weights"][node]


def inverted_model(source: Path, target: Path, version: str) -> Path:
    """Copy the model with every probability replaced by ``1 - p``."""
    import onnx
    from onnx import TensorProto, helper

    shutil.copytree(source, target)
    model = onnx.load(target / "model.onnx")
    graph = model.graph
    output = next(o for o in graph.output if "prob" in o.name.lower())
    original = output.name
    for node in graph.node:
        node.output[:] = [f"{original}_raw" if name == original else name for name in node.output]
    graph.initializer.append(helper.make_tensor("inverted_one", TensorProto.FLOAT, [], [1.0]))
    graph.node.append(helper.make_node("Sub", ["inverted_one", f"{original}_raw"], [original]))
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("", 15))
    onnx.checker.check_model(model)
    onnx.save(model, target / "model.onnx")
    _edit_booster(target, _negated)
    _finish(target, version)
    return target


def _finish(target: Path, version: str | None) -> None:
    """Give the copy its version name and a manifest that matches its files."""
    if version is not None:
        metadata = json.loads((target / "metadata.json").read_text())
        metadata["version"] = version
        (target / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
        for path in sorted(target.iterdir())
        if path.is_file() and path.name != artifacts.MANIFEST
    ]
    (target / artifacts.MANIFEST).write_text("".join(lines))
