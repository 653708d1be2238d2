"""Training: the model directory it writes, its metrics and the split that keeps time order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nepse_predictor import artifacts
from nepse_predictor.data import load_ohlcv
from nepse_predictor.dataset import labelled_rows, time_split
from nepse_predictor.errors import DataError, UserError
from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.sample_data import BUNDLED_SAMPLE, generate, write_csv
from nepse_predictor.training import train


def test_writes_every_artifact_listed_in_a_verifying_manifest(trained_model):
    files = {p.name for p in trained_model.iterdir()}
    assert files == {"model.ubj", "model.onnx", "model.joblib", "metadata.json", "checksums.sha256"}
    manifest = artifacts.read_manifest(trained_model)
    assert set(manifest) == files - {"checksums.sha256"}
    assert artifacts.verify_model_dir(trained_model)["version"] == "v1"


def test_metadata_records_features_data_hash_metrics_parity_and_libraries(trained_model):
    metadata = json.loads((trained_model / "metadata.json").read_text())
    assert metadata["features"] == list(FEATURE_NAMES)
    assert metadata["training_data_sha256"] == load_ohlcv(BUNDLED_SAMPLE).sha256
    assert metadata["training_data"]["synthetic"] is True
    for scores in (metadata["metrics"]["model"], metadata["metrics"]["baseline"]):
        assert set(scores) == {"auc", "accuracy", "log_loss"}
    assert metadata["metrics"]["baseline"]["auc"] == 0.5
    assert metadata["onnx_parity"]["rows"] == metadata["metrics"]["rows"]["test"]
    assert metadata["onnx_parity"]["max_abs_diff"] <= 1e-5
    assert {"xgboost-cpu", "onnxruntime", "scikit-learn"} <= set(metadata["libraries"])


def test_the_model_beats_the_naive_baseline_on_the_later_period(trained_model):
    metrics = json.loads((trained_model / "metadata.json").read_text())["metrics"]
    assert metrics["model"]["auc"] > metrics["baseline"]["auc"]
    assert metrics["model"]["log_loss"] < metrics["baseline"]["log_loss"]


def test_the_split_is_time_ordered_and_purges_the_session_before_the_test_period():
    history = load_ohlcv(BUNDLED_SAMPLE)
    split = time_split(history)
    _, _, dates = labelled_rows(history)
    sessions = np.unique(dates).astype("datetime64[D]").astype(object)
    boundary = sessions.tolist().index(split.test_start)
    # The last training session's label is the next session's move: that session is purged.
    assert split.train_end == sessions[boundary - 2]
    assert len(split.x_train) + len(split.x_test) < len(dates)


def test_the_same_recipe_gives_the_same_model(tmp_path):
    first = train(out_root=tmp_path, version="a", seed=5, with_joblib=False).model_dir
    second = train(out_root=tmp_path, version="b", seed=5, with_joblib=False).model_dir
    assert (first / "model.onnx").read_bytes() == (second / "model.onnx").read_bytes()


def test_refuses_to_overwrite_an_existing_version(trained_model, models_root):
    with pytest.raises(UserError, match=r"v1: already exists"):
        train(out_root=models_root, version="v1")


def test_refuses_a_version_name_that_is_not_a_plain_name(tmp_path):
    with pytest.raises(UserError, match=r"--version '../x'"):
        train(out_root=tmp_path, version="../x")


def test_bad_training_data_leaves_no_model_directory(tmp_path):
    path = write_csv(generate(["NABIL"], days=60), tmp_path / "data.csv")
    text = path.read_text().splitlines()
    text[10] = text[10].replace("NABIL", "")
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"row 11: column 'Symbol' is empty"):
        train(path, out_root=tmp_path / "models")
    assert not (tmp_path / "models").exists()
