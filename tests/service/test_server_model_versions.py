"""Serving from a folder of model versions (`serve --models-root`, what `make run` and the
image use): the newest version is served, a tampered one is named in the log and in /ready,
and serving an older version instead is an explicit choice that the log, /ready and /metrics
show."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from serving_kit import Server

from testkit.net import wait_for_http


@pytest.fixture
def models(tmp_path: Path, trained_model: Path, second_model: Path) -> Path:
    """A models root with v1 (older) and v2 (newest)."""
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(trained_model, root / "v1")
    shutil.copytree(second_model, root / "v2")
    return root


def tamper(version_dir: Path) -> Path:
    target = version_dir / "model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_the_newest_version_is_served_and_shown_in_metrics(start_server, models) -> None:
    server: Server = start_server(None, args=("--models-root", str(models)))
    wait_for_http(f"{server.base_url}/ready", timeout=30)
    ready = server.client.get("/ready").json()
    assert ready["model_version"] == "v2" and ready["newest"] is True and ready["skipped"] == []
    assert server.metric("nepse_model_info", version="v2") == 1
    assert server.metric("nepse_model_newest") == 1


def test_a_tampered_newest_version_is_named_not_silently_replaced(start_server, models) -> None:
    tampered = tamper(models / "v2")
    server: Server = start_server(None, args=("--models-root", str(models)))
    wait_for_http(f"{server.base_url}/ready", timeout=30, status=503)
    reason = server.client.get("/ready").json()["reason"]
    assert f"{tampered}: checksum mismatch" in reason
    assert server.post("/v1/predict", {"features": {}}).status_code == 503
    errors = [line["msg"] for line in server.log_lines() if line.get("level") == "error"]
    assert any(str(tampered) in message for message in errors)
    assert server.metric("nepse_model_info") == 0


def test_a_single_tampered_version_is_named_in_ready(start_server, tmp_path, trained_model) -> None:
    root = tmp_path / "models"
    root.mkdir()
    tampered = tamper(shutil.copytree(trained_model, root / "v1"))
    server: Server = start_server(None, args=("--models-root", str(root)))
    wait_for_http(f"{server.base_url}/ready", timeout=30, status=503)
    reason = server.client.get("/ready").json()["reason"]
    assert f"{tampered}: checksum mismatch" in reason
    assert "no model directory configured" not in reason


def test_falling_back_to_an_older_version_is_explicit_and_visible(start_server, models) -> None:
    tampered = tamper(models / "v2")
    server: Server = start_server(None, args=("--models-root", str(models)), model_fallback="true")
    wait_for_http(f"{server.base_url}/ready", timeout=30)
    ready = server.client.get("/ready").json()
    assert ready["model_version"] == "v1" and ready["newest"] is False
    [skipped] = ready["skipped"]
    assert skipped["version"] == "v2" and f"{tampered}: checksum mismatch" in skipped["reason"]
    warnings = [line for line in server.log_lines() if line.get("level") == "warning"]
    assert any(str(tampered) in line["msg"] for line in warnings)
    assert any("not the newest version v2" in line["msg"] for line in warnings)
    assert server.metric("nepse_model_info", version="v1") == 1
    assert server.metric("nepse_model_newest") == 0


def test_the_fallback_flag_of_serve_does_the_same(start_server, models) -> None:
    tamper(models / "v2")
    server: Server = start_server(None, args=("--models-root", str(models), "--model-fallback"))
    wait_for_http(f"{server.base_url}/ready", timeout=30)
    assert server.client.get("/ready").json()["model_version"] == "v1"
