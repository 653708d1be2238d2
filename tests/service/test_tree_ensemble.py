"""The compiled tree evaluator and the reader of model.ubj behind it: XGBoost's answers for
trees of every shape, and a clear refusal, never a crash, for files and arrays that are wrong."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import xgboost

from nepse_predictor import _trees, ubjson
from nepse_predictor.errors import ModelIntegrityError
from nepse_predictor.tree_ensemble import read_ensemble, trees_predictor

WIDTH = 6


def booster(tmp_path: Path, depth: int, rounds: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, WIDTH)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(scale=0.5, size=600) > 0).astype(int)
    model = xgboost.train(
        {"objective": "binary:logistic", "max_depth": depth, "eta": 0.3, "seed": seed},
        xgboost.DMatrix(x, label=y),
        num_boost_round=rounds,
    )
    path = tmp_path / f"depth{depth}.ubj"
    model.save_model(str(path))
    return path


@pytest.mark.parametrize("depth", [1, 2, 3, 6])
def test_matches_xgboost_for_trees_of_any_shape(tmp_path: Path, depth: int) -> None:
    path = booster(tmp_path, depth)
    reference = xgboost.Booster(model_file=str(path))
    ensemble = read_ensemble(path, WIDTH)
    predict = trees_predictor(path, WIDTH)
    rng = np.random.default_rng(depth)
    on_thresholds = np.repeat(ensemble.thresholds[:, :1], WIDTH, axis=1)
    on_thresholds = np.where(np.isfinite(on_thresholds), on_thresholds, 0).astype(np.float32)
    for rows in (
        rng.normal(size=(1001, WIDTH)).astype(np.float32),  # not a multiple of 4 rows
        rng.normal(scale=50, size=(3, WIDTH)).astype(np.float32),
        on_thresholds,  # exactly on a split: XGBoost goes right, so must this
        np.zeros((1, WIDTH), np.float32),
    ):
        expected = reference.inplace_predict(rows, validate_features=False)
        assert np.max(np.abs(predict(rows) - expected)) <= 1e-6
    assert predict(np.zeros((0, WIDTH), np.float32)).shape == (0,)


def test_the_arrays_are_complete_to_the_deepest_tree(tmp_path: Path) -> None:
    ensemble = read_ensemble(booster(tmp_path, 3), WIDTH)
    assert ensemble.depth == 3 and ensemble.trees == 40
    assert ensemble.features.shape == ensemble.thresholds.shape == (40, 7)
    assert ensemble.leaves.shape == (40, 8)
    assert ensemble.features.max() < WIDTH


def ubj_object(**members: bytes) -> bytes:
    body = b"".join(
        b"L" + struct.pack(">q", len(key)) + key.encode() + value for key, value in members.items()
    )
    return b"{" + body + b"}"


def ubj_string(text: str) -> bytes:
    return b"S" + b"L" + struct.pack(">q", len(text)) + text.encode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "ends"),
        (b"{L\x00\x00\x00\x00\x00\x00\x00\x05lea", "runs past the end"),
        (b"l\x00\x01", "bytes asked for"),
        (b"[$l#L\x7f\xff\xff\xff\xff\xff\xff\xff", "runs past the end"),
        (b"X", "unknown marker"),
        (b"[" * 100 + b"]" * 100, "nests deeper"),
        (b"Z Z", "follow the value"),
        (b"[$l]", "needs a count"),
        (b"S\x69\x02\xff\xfe", "not UTF-8"),
    ],
)
def test_broken_ubjson_is_refused_with_where(data: bytes, words: str) -> None:
    with pytest.raises(ubjson.UBJSONError, match=words):
        ubjson.loads(data)


def test_ubjson_reads_what_xgboost_writes(tmp_path: Path) -> None:
    model = ubjson.loads(booster(tmp_path, 2).read_bytes())
    assert model["learner"]["objective"]["name"] == "binary:logistic"
    [tree, *_] = model["learner"]["gradient_booster"]["model"]["trees"]
    assert tree["split_conditions"].dtype == np.dtype(">f4")


def edited(tmp_path: Path, change) -> Path:
    """model.ubj with one edit, written back through XGBoost's JSON form."""
    import json

    path = booster(tmp_path, 3)
    json_path = tmp_path / "model.json"
    xgboost.Booster(model_file=str(path)).save_model(str(json_path))
    model = json.loads(json_path.read_text())
    change(model)
    json_path.write_text(json.dumps(model))
    out = tmp_path / "edited.ubj"
    xgboost.Booster(model_file=str(json_path)).save_model(str(out))
    return out


def first_tree(model: dict) -> dict:
    return model["learner"]["gradient_booster"]["model"]["trees"][0]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda m: m["learner"]["objective"].update(name="reg:squarederror"),
            "takes binary:logistic",
        ),
        (lambda m: m["learner"]["learner_model_param"].update(num_feature="9"), "has 9 features"),
    ],
)
def test_models_the_evaluator_does_not_take_are_refused(tmp_path: Path, change, words) -> None:
    path = edited(tmp_path, change)
    with pytest.raises(ModelIntegrityError, match=words) as refused:
        read_ensemble(path, WIDTH)
    assert str(path) in str(refused.value)


def test_a_file_that_is_not_a_model_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "model.ubj"
    for content, words in (
        (b"not ubjson", "unknown marker"),
        (ubj_object(learner=ubj_object(objective=ubj_string("x"))), "objective.name"),
    ):
        path.write_bytes(content)
        with pytest.raises(ModelIntegrityError, match=words) as refused:
            read_ensemble(path, WIDTH)
        assert str(path) in str(refused.value)


def test_the_evaluator_checks_its_arrays_before_reading(tmp_path: Path) -> None:
    ensemble = read_ensemble(booster(tmp_path, 2), WIDTH)
    rows = np.zeros((4, WIDTH), np.float32)
    out = np.empty(4, np.float32)
    good = (ensemble.features, ensemble.thresholds, ensemble.leaves, ensemble.depth, 0.0)

    def call(
        rows=rows,
        width=WIDTH,
        features=good[0],
        thresholds=good[1],
        leaves=good[2],
        depth=good[3],
        out=out,
    ):
        _trees.probabilities(rows, width, features, thresholds, leaves, depth, 0.0, out)

    call()
    beyond = ensemble.features.copy()
    beyond[5, 0] = WIDTH
    negative = ensemble.features.copy()
    negative[0, 1] = -1
    for kwargs, error, words in (
        ({"features": beyond}, ValueError, "feature the rows do not have"),
        ({"features": negative}, ValueError, "feature the rows do not have"),
        ({"leaves": ensemble.leaves[:-1]}, ValueError, "do not fit"),
        ({"out": np.empty(3, np.float32)}, ValueError, "do not fit"),
        ({"rows": rows.astype(np.float64)}, TypeError, "'f'"),
        ({"rows": np.zeros((WIDTH, 4), np.float32).T}, ValueError, "contiguous"),
        ({"depth": 11}, ValueError, "depth"),
        ({"depth": 3}, ValueError, "do not fit"),
        ({"width": 0}, ValueError, "width"),
        ({"out": np.empty(4, np.float32)[::-1].copy().view(np.int32)}, TypeError, "'f'"),
    ):
        with pytest.raises(error, match=words):
            call(**kwargs)
