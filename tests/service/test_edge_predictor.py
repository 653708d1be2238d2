"""The edge path: ONNX Runtime and numpy only, same answers as XGBoost."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nepse_predictor.data import load_ohlcv
from nepse_predictor.dataset import labelled_rows
from nepse_predictor.sample_data import BUNDLED_SAMPLE


def test_imports_nothing_but_onnxruntime_and_numpy(trained_model):
    code = (
        "import sys, json\n"
        "from nepse_predictor.edge import EdgePredictor\n"
        f"p = EdgePredictor({str(trained_model)!r})\n"
        "p.predict([[0.0] * len(p.features)])\n"
        "heavy = ['fastapi', 'pydantic', 'xgboost', 'sklearn', 'pandas', 'uvicorn', 'redis']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_predictions_equal_xgboost_to_1e_5(trained_model):
    import xgboost

    from nepse_predictor.edge import EdgePredictor

    x, _, _ = labelled_rows(load_ohlcv(BUNDLED_SAMPLE))
    rows = x[-500:].astype(np.float32)
    booster = xgboost.Booster(model_file=str(trained_model / "model.ubj"))
    expected = booster.predict(xgboost.DMatrix(rows))
    assert np.max(np.abs(EdgePredictor(trained_model).predict(rows) - expected)) <= 1e-5


def test_refuses_a_changed_onnx_file(trained_model, tmp_path):
    import shutil

    from nepse_predictor.edge import EdgePredictor
    from nepse_predictor.errors import ModelIntegrityError

    copy = shutil.copytree(trained_model, tmp_path / "copy")
    (copy / "model.onnx").write_bytes(b"\0" + (copy / "model.onnx").read_bytes()[1:])
    with pytest.raises(ModelIntegrityError, match=r"model.onnx: checksum does not match"):
        EdgePredictor(copy)


def test_the_report_gives_import_time_load_time_and_memory(trained_model):
    out = subprocess.run(
        [sys.executable, "-m", "nepse_predictor.cli", "edge-report", str(trained_model)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["model_version"] == "v1"
    assert report["loaded_modules"] == []
    assert 0 < report["import_seconds"] < 10
    assert report["peak_rss_mib"] > 0
    print(f"\nedge: {report}")
