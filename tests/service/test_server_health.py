"""Liveness and readiness: a missing or tampered model keeps the server alive but not ready,
and the log says exactly what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from serving_kit import Server, example_row, oip_body

from nepse_predictor.artifacts import write_manifest
from testkit.net import wait_for_http


@pytest.fixture
def model_copy(trained_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models" / trained_model.name
    shutil.copytree(trained_model, target)
    return target


def assert_not_ready(server: Server, *in_log: str) -> dict:
    assert server.client.get("/health").status_code == 200
    assert server.client.get("/v2/health/live").json() == {"live": True}
    ready = server.client.get("/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False
    assert server.client.get("/v2/health/ready").status_code == 503
    model_ready = server.client.get("/v2/models/nepse-predictor/ready")
    assert model_ready.status_code == 503
    assert model_ready.json() == {"name": "nepse-predictor", "ready": False}
    for path, request in [
        ("/v1/predict", {"features": example_row()}),
        ("/v2/models/nepse-predictor/infer", oip_body([example_row()])),
    ]:
        response = server.post(path, request)
        assert response.status_code == 503
        assert response.json()["error"].startswith("model not ready: ")
        assert response.headers["x-model-version"] == "none"
    errors = [line for line in server.log_lines() if line.get("level") == "error"]
    assert errors, server.log_text()
    message = errors[0]["msg"]
    for text in in_log:
        assert text in message, message
        assert text in body["reason"]
    metadata = server.client.get("/v2/models/nepse-predictor")
    assert metadata.status_code == 503 and "model not ready" in metadata.json()["error"]
    assert server.metric("nepse_model_ready") == 0
    return body


def test_ready_with_a_verified_model(server: Server) -> None:
    assert server.client.get("/health").json() == {"status": "ok"}
    body = server.client.get("/ready").json()
    assert body == {"ready": True, "model_version": "v1", "backend": "trees", "track": "canary"}
    assert server.client.get("/v2/health/ready").json() == {"ready": True}
    assert server.client.get("/v2/models/nepse-predictor/ready").json() == {
        "name": "nepse-predictor",
        "ready": True,
    }
    loaded = [line for line in server.log_lines() if line.get("msg") == "model loaded"]
    assert loaded and loaded[0]["model_version"] == "v1"


def test_a_byte_changed_in_model_onnx_makes_it_not_ready(start_server, model_copy: Path) -> None:
    onnx = model_copy / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx.write_bytes(bytes(data))
    server = start_server(model_copy)
    assert_not_ready(server, str(onnx), "checksum mismatch")


def test_a_missing_model_directory_is_named(start_server, tmp_path: Path) -> None:
    missing = tmp_path / "models" / "2026.01.01-nothere"
    server = start_server(missing)
    assert_not_ready(server, str(missing), "does not exist")


def test_no_model_configured_says_how_to_configure_one(start_server, tmp_path: Path) -> None:
    server = start_server(None)
    assert_not_ready(server, "NEPSE_MODEL_DIR")


def test_a_missing_file_is_named(start_server, model_copy: Path) -> None:
    (model_copy / "model.onnx").unlink()
    server = start_server(model_copy)
    assert_not_ready(server, str(model_copy / "model.onnx"), "missing")


def test_a_corrupt_but_re_signed_onnx_file_is_reported(start_server, model_copy: Path) -> None:
    (model_copy / "model.onnx").write_bytes(b"not an onnx model")
    write_manifest(model_copy)
    server = start_server(model_copy, backend="onnx")
    assert_not_ready(server, str(model_copy / "model.onnx"), "ONNX Runtime cannot load it")


def test_a_corrupt_but_re_signed_booster_is_reported_by_the_default_backend(
    start_server, model_copy: Path
) -> None:
    (model_copy / "model.ubj").write_bytes(b"{not a booster")
    write_manifest(model_copy)
    server = start_server(model_copy)
    assert_not_ready(server, str(model_copy / "model.ubj"), "expected a length")


def test_a_corrupt_but_re_signed_xgboost_file_is_reported(start_server, model_copy) -> None:
    (model_copy / "model.ubj").write_bytes(b"not a booster")
    write_manifest(model_copy)
    server = start_server(model_copy, backend="xgboost")
    assert_not_ready(server, str(model_copy / "model.ubj"), "XGBoost cannot load it")


def test_features_that_differ_from_the_service_are_refused(start_server, model_copy) -> None:
    metadata_path = model_copy / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["features"] = list(reversed(metadata["features"]))
    metadata_path.write_text(json.dumps(metadata))
    write_manifest(model_copy)
    server = start_server(model_copy)
    assert_not_ready(server, "metadata.json", "do not match the service's feature function")


def test_model_path_naming_a_file_serves_its_folder(start_server, trained_model: Path) -> None:
    server = start_server(None, env={"MODEL_PATH": str(trained_model / "model.onnx")})
    wait_for_http(f"{server.base_url}/ready", timeout=30)
    assert server.client.get("/ready").json()["model_version"] == "v1"
