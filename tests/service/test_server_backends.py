"""ONNX Runtime (default) and the XGBoost booster give the same probabilities to 1e-5."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from serving_kit import example_row, oip_body

from nepse_predictor.data import load_ohlcv
from nepse_predictor.dataset import time_split
from nepse_predictor.model import load_model
from nepse_predictor.sample_data import BUNDLED_SAMPLE


@pytest.fixture(scope="module")
def held_out_rows() -> np.ndarray:
    split = time_split(load_ohlcv(BUNDLED_SAMPLE))
    return split.x_test.astype(np.float32)


def test_backends_agree_on_held_out_and_random_rows(trained_model: Path, held_out_rows) -> None:
    onnx = load_model(trained_model, "onnx")
    booster = load_model(trained_model, "xgboost")
    rng = np.random.default_rng(3)
    noisy = held_out_rows * rng.normal(1.0, 0.5, held_out_rows.shape).astype(np.float32)
    for rows in (held_out_rows, noisy, held_out_rows[:1]):
        a = onnx.predict_proba(rows)
        b = booster.predict_proba(rows)
        assert a.shape == b.shape == (len(rows),)
        assert np.max(np.abs(a.astype(np.float64) - b)) <= 1e-5


def test_servers_on_each_backend_answer_the_same(start_server, trained_model: Path) -> None:
    onnx = start_server(trained_model, backend="onnx")
    xgb = start_server(trained_model, backend="xgboost")
    assert xgb.client.get("/ready").json()["backend"] == "xgboost"
    assert xgb.client.get("/v2/models/nepse-predictor").json()["platform"] == "xgboost_xgboost"
    rows = [example_row(s) for s in np.linspace(-1, 2, 40)]
    a = onnx.post("/v2/models/nepse-predictor/infer", oip_body(rows)).json()
    b = xgb.post("/v2/models/nepse-predictor/infer", oip_body(rows)).json()
    np.testing.assert_allclose(a["outputs"][0]["data"], b["outputs"][0]["data"], atol=1e-5)


def test_serving_with_onnx_never_imports_xgboost(trained_model: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "from nepse_predictor.app import create_app\n"
        "from nepse_predictor.config import Settings\n"
        f"app = create_app(Settings(model_dir={str(trained_model)!r}))\n"
        "asyncio.run(app.state.serving.start())\n"
        "assert app.state.serving.model is not None\n"
        "heavy = [m for m in ('xgboost', 'sklearn', 'pandas', 'scipy', 'redis', 'matplotlib')\n"
        "         if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_xgboost_backend_without_the_package_is_not_ready_and_says_why(trained_model: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "sys.modules['xgboost'] = None  # as in the default image, which leaves XGBoost out\n"
        "from nepse_predictor.app import create_app\n"
        "from nepse_predictor.config import Settings\n"
        f"app = create_app(Settings(model_dir={str(trained_model)!r}, backend='xgboost'))\n"
        "asyncio.run(app.state.serving.start())\n"
        "print(app.state.serving.model is None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
    logged = done.stdout + done.stderr
    assert "NEPSE_BACKEND=xgboost needs the xgboost package" in logged
    assert "Traceback" not in logged
