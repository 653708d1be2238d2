"""The model's trees for the compiled evaluator (`_trees.c`, backend `trees`).

They are read from model.ubj, the XGBoost file every model directory holds (verified against
the manifest before this runs), and laid out complete to the ensemble's depth: per tree the
split feature and threshold of each of its 2^D - 1 heap-ordered nodes, then its 2^D leaf
values. A leaf above the full depth fills every leaf below it, under splits that always go
left. Only what XGBoost's binary:logistic gbtree holds is taken: numerical splits, one output,
at most MAX_DEPTH levels. A booster of another kind raises UnsupportedTrees (the `auto` backend
then serves the model with ONNX Runtime); a malformed file raises ModelIntegrityError.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nepse_predictor.errors import ModelIntegrityError
from nepse_predictor.ubjson import UBJSONError, loads

MAX_DEPTH = 10
MAX_TREES = 100_000


@dataclass(frozen=True)
class TreeEnsemble:
    width: int
    depth: int
    base_margin: float
    features: np.ndarray  # int32, trees x (2^depth - 1)
    thresholds: np.ndarray  # float32, trees x (2^depth - 1)
    leaves: np.ndarray  # float32, trees x 2^depth

    @property
    def trees(self) -> int:
        return len(self.features)


class _Refused(ValueError):
    """The file is not a well-formed booster."""


class _Unsupported(_Refused):
    """A well-formed booster of a kind the evaluator does not take."""


class UnsupportedTrees(ModelIntegrityError):
    """model.ubj is a booster the compiled evaluator does not take (another objective, more
    outputs, categorical splits, deeper trees): `auto` serves the model with ONNX Runtime."""


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            raise _Refused(f"has no {'.'.join(keys)}")
        obj = obj[key]
    return obj


def _base_margin(learner: dict[str, Any]) -> float:
    text = str(_get(learner, "learner_model_param", "base_score")).strip("[]")
    try:
        base_score = float(text)
    except ValueError:
        raise _Refused(f"base_score {text!r} is not a number") from None
    if not 0 < base_score < 1:
        raise _Refused(f"base_score {base_score} is not a probability")
    return math.log(base_score / (1 - base_score))


def _nodes(tree: dict[str, Any], index: int, width: int) -> tuple[np.ndarray, ...]:
    arrays = []
    for key in ("left_children", "right_children", "split_indices", "split_conditions"):
        value = _get(tree, key)
        if not isinstance(value, np.ndarray) or value.ndim != 1:
            raise _Refused(f"tree {index}: {key} is not a numeric array")
        arrays.append(value)
    left, right, split, condition = arrays
    count = len(left)
    if count == 0 or any(len(a) != count for a in arrays):
        raise _Refused(f"tree {index}: its node arrays differ in length or are empty")
    split_type = tree.get("split_type")
    if isinstance(split_type, np.ndarray) and split_type.any():
        raise _Unsupported(f"tree {index}: categorical splits are not supported")
    internal = left != -1
    if (internal != (right != -1)).any():
        raise _Refused(f"tree {index}: a node has one child")
    children = np.concatenate([left[internal], right[internal]])
    if (children <= 0).any() or (children >= count).any():
        raise _Refused(f"tree {index}: a child index is out of range")
    if len(np.unique(children)) != len(children) or len(children) != count - 1:
        raise _Refused(f"tree {index}: its nodes do not form one tree")
    if ((split[internal] < 0) | (split[internal] >= width)).any():
        raise _Refused(f"tree {index}: a split uses a feature beyond the {width} the model has")
    if not np.isfinite(condition).all():
        raise _Refused(f"tree {index}: a threshold or leaf value is not finite")
    return left.astype(np.int64), right.astype(np.int64), split.astype(np.int32), condition


def _depth(left: np.ndarray, right: np.ndarray, index: int) -> int:
    depth, frontier = 0, [0]
    while True:
        nodes = np.array(frontier, dtype=np.int64)
        inner = nodes[left[nodes] != -1]
        if not len(inner):
            return depth
        depth += 1
        if depth > MAX_DEPTH:
            raise _Unsupported(f"tree {index} is deeper than {MAX_DEPTH} levels")
        frontier = [*left[inner], *right[inner]]


def _ensemble(model: Any, width: int) -> TreeEnsemble:
    learner = _get(model, "learner")
    objective = _get(learner, "objective", "name")
    if objective != "binary:logistic":
        raise _Unsupported(f"objective is {objective!r}; the trees backend takes binary:logistic")
    if str(_get(learner, "learner_model_param", "num_feature")) != str(width):
        raise _Refused(f"has {_get(learner, 'learner_model_param', 'num_feature')} features")
    booster = _get(learner, "gradient_booster")
    if _get(booster, "name") != "gbtree":
        raise _Unsupported(f"booster is {_get(booster, 'name')!r}; the trees backend takes gbtree")
    trees = _get(booster, "model", "trees")
    info = _get(booster, "model", "tree_info")
    if not isinstance(trees, list) or not 0 < len(trees) <= MAX_TREES:
        raise _Refused(f"holds {len(trees) if isinstance(trees, list) else 'no'} trees")
    if len(info) != len(trees) or np.any(np.asarray(info) != 0):
        raise _Unsupported("has more than one output group")
    parsed = [_nodes(tree, index, width) for index, tree in enumerate(trees)]
    depth = max(1, *(_depth(left, right, i) for i, (left, right, *_) in enumerate(parsed)))
    internal = (1 << depth) - 1
    features = np.zeros((len(trees), internal), np.int32)
    thresholds = np.full((len(trees), internal), np.inf, np.float32)
    leaves = np.zeros((len(trees), internal + 1), np.float32)
    for index, (left, right, split, condition) in enumerate(parsed):
        stack = [(0, 0, 0)]  # node, heap position, level
        while stack:
            node, position, level = stack.pop()
            if left[node] == -1:
                span = 1 << (depth - level)
                first = (position - ((1 << level) - 1)) * span
                leaves[index, first : first + span] = condition[node]
                continue
            features[index, position] = split[node]
            thresholds[index, position] = condition[node]
            stack.append((int(left[node]), 2 * position + 1, level + 1))
            stack.append((int(right[node]), 2 * position + 2, level + 1))
    return TreeEnsemble(width, depth, _base_margin(learner), features, thresholds, leaves)


def read_ensemble(path: Path, width: int) -> TreeEnsemble:
    """The trees of an XGBoost model.ubj; ModelIntegrityError naming the file if refused."""
    try:
        return _ensemble(loads(path.read_bytes()), width)
    except _Unsupported as exc:
        raise UnsupportedTrees(f"{path}: {exc}") from None
    except (UBJSONError, _Refused) as exc:
        raise ModelIntegrityError(f"{path}: {exc}") from None


def trees_predictor(path: Path, width: int) -> Callable[[np.ndarray], np.ndarray]:
    from nepse_predictor._trees import probabilities

    ensemble = read_ensemble(path, width)
    args = (
        width,
        ensemble.features,
        ensemble.thresholds,
        ensemble.leaves,
        ensemble.depth,
        float(np.float32(ensemble.base_margin)),
    )

    def predict(rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        out = np.empty(len(rows), dtype=np.float32)
        probabilities(rows, *args, out)
        return out

    return predict
