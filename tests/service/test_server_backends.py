"""The three backends (the compiled trees, ONNX Runtime, the XGBoost booster) give the same
probabilities to 1e-5, and `auto` picks the compiled trees where the package has them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from serving_kit import example_row, oip_body, wait_until

from nepse_predictor.data import load_ohlcv
from nepse_predictor.dataset import time_split
from nepse_predictor.model import compiled_trees_available, load_model
from nepse_predictor.sample_data import BUNDLED_SAMPLE
from testkit.model_variants import one_row_only_model


@pytest.fixture(scope="module")
def held_out_rows() -> np.ndarray:
    split = time_split(load_ohlcv(BUNDLED_SAMPLE))
    return split.x_test.astype(np.float32)


def test_backends_agree_on_held_out_and_random_rows(trained_model: Path, held_out_rows) -> None:
    booster = load_model(trained_model, "xgboost")
    rng = np.random.default_rng(3)
    noisy = held_out_rows * rng.normal(1.0, 0.5, held_out_rows.shape).astype(np.float32)
    for backend in ("trees", "onnx"):
        model = load_model(trained_model, backend)
        assert model.backend == backend
        for rows in (held_out_rows, noisy, held_out_rows[:1], held_out_rows[:7]):
            a = model.predict_proba(rows)
            b = booster.predict_proba(rows)
            assert a.shape == b.shape == (len(rows),)
            assert np.max(np.abs(a.astype(np.float64) - b)) <= 1e-5


def test_auto_is_the_compiled_trees_here(trained_model: Path) -> None:
    # The development environment builds the package with its C part; a build that silently
    # fell back to no evaluator would leave every server on the slower ONNX Runtime.
    assert compiled_trees_available()
    assert load_model(trained_model).backend == "trees"


def test_servers_on_each_backend_answer_the_same(start_server, trained_model: Path) -> None:
    servers = {
        name: start_server(trained_model, backend=name) for name in ("auto", "onnx", "xgboost")
    }
    assert servers["auto"].client.get("/ready").json()["backend"] == "trees"
    assert servers["xgboost"].client.get("/ready").json()["backend"] == "xgboost"
    metadata = servers["xgboost"].client.get("/v2/models/nepse-predictor").json()
    assert metadata["platform"] == "xgboost_xgboost"
    rows = [example_row(s) for s in np.linspace(-1, 2, 40)]
    answers = {
        name: server.post("/v2/models/nepse-predictor/infer", oip_body(rows)).json()
        for name, server in servers.items()
    }
    for name in ("auto", "onnx"):
        np.testing.assert_allclose(
            answers[name]["outputs"][0]["data"], answers["xgboost"]["outputs"][0]["data"], atol=1e-5
        )
    assert servers["auto"].metric("nepse_model_info", backend="trees") == 1


def test_serving_with_onnx_never_imports_xgboost(trained_model: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "from nepse_predictor.app import create_app\n"
        "from nepse_predictor.config import Settings\n"
        f"app = create_app(Settings(model_dir={str(trained_model)!r}))\n"
        "asyncio.run(app.state.start())\n"
        "assert app.state.model is not None\n"
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
        "asyncio.run(app.state.start())\n"
        "print(app.state.model is None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
    logged = done.stdout + done.stderr
    assert "NEPSE_BACKEND=xgboost needs the xgboost package" in logged
    assert "Traceback" not in logged


def test_auto_serves_a_booster_the_trees_do_not_take_with_onnx_and_says_why(
    start_server, trained_model: Path, tmp_path: Path
) -> None:
    # The one-row-only variant's booster is binary:logitraw, which the compiled trees refuse.
    variant = one_row_only_model(trained_model, tmp_path / "v1")
    auto = start_server(variant)
    wait_until(lambda: auto.client.get("/ready").status_code == 200, what="auto ready")
    assert auto.client.get("/ready").json()["backend"] == "onnx"
    assert "serving with ONNX Runtime (NEPSE_BACKEND=auto)" in auto.log_text()
    assert "binary:logitraw" in auto.log_text()
    trees = start_server(variant, backend="trees")
    wait_until(lambda: "binary:logitraw" in trees.log_text(), what="the refusal logged")
    answer = trees.client.get("/ready")
    assert answer.status_code == 503 and "binary:logitraw" in answer.json()["reason"]
