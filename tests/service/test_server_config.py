"""Settings from the environment and the `serve` command's failure paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nepse_predictor.config import (
    Settings,
    SettingsError,
    environment_settings,
    setting_descriptions,
)
from testkit.net import free_port, wait_for_http


def serve(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    full = {k: v for k, v in os.environ.items() if not k.startswith("NEPSE_")}
    full.pop("MODEL_PATH", None)
    return subprocess.run(
        [sys.executable, "-m", "nepse_predictor.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**full, **(env or {})},
    )


def test_settings_come_from_nepse_variables(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEPSE_TRACK", "shadow")
    monkeypatch.setenv("NEPSE_BACKEND", "xgboost")
    monkeypatch.setenv("NEPSE_MAX_BATCH_ROWS", "7")
    monkeypatch.setenv("NEPSE_REDIS_URL", "  ")
    monkeypatch.setenv("MODEL_PATH", str(tmp_path))
    settings = Settings.from_environment()
    assert (settings.track, settings.backend, settings.max_batch_rows) == ("shadow", "xgboost", 7)
    assert settings.redis_url is None
    assert settings.model_dir == tmp_path
    assert Settings(model_dir=tmp_path / "x").model_dir == tmp_path / "x"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEPSE_TRACK", "purple"),
        ("NEPSE_MAX_BATCH_ROWS", "0"),
        ("NEPSE_BACKEND", "torch"),
        ("NEPSE_REDIS_URL", "localhost:6379"),
        ("NEPSE_MAX_HEADER_BYTES", "10"),
        ("NEPSE_MAX_HEADERS", "0"),
        ("NEPSE_HEADER_TIMEOUT_SECONDS", "0"),
        ("NEPSE_BODY_TIMEOUT_SECONDS", "-1"),
        ("NEPSE_KEEP_ALIVE_SECONDS", "forever"),
        ("NEPSE_MAX_CONNECTIONS", "0"),
    ],
)
def test_a_bad_setting_stops_serve_with_its_name(variable: str, value: str) -> None:
    done = serve(env={variable: value})
    assert done.returncode == 2
    assert f"{variable}={value!r}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_port_is_refused() -> None:
    done = serve("--port", "70000")
    assert done.returncode == 2 and "--port 70000" in done.stderr


def test_a_bad_port_from_the_environment_is_named_by_its_variable() -> None:
    done = serve(env={"NEPSE_PORT": "tcp://10.0.0.1:80"})
    assert done.returncode == 2
    assert "NEPSE_PORT='tcp://10.0.0.1:80'" in done.stderr and "--port" not in done.stderr


def test_an_error_names_the_variable_or_option_that_gave_the_value() -> None:
    given = environment_settings({"MODEL_PATH": "/models/m1", "NEPSE_MAX_BARS": "3"})
    assert given.origins == {"model_dir": "MODEL_PATH", "max_bars": "NEPSE_MAX_BARS"}
    given.give("port", -1, "--port")
    with pytest.raises(SettingsError) as refused:
        given.validate()
    message = str(refused.value)
    assert "NEPSE_MAX_BARS='3'" in message and "--port -1" in message
    assert "NEPSE_PORT" not in message


def test_the_model_directory_from_the_environment_is_served_as_it_is(tmp_path: Path) -> None:
    # No folder-of-versions guess and no training for a directory the environment names:
    # the server starts, not ready, and says what is missing there.
    port = free_port()
    missing = tmp_path / "nowhere"
    process = subprocess.Popen(
        [sys.executable, "-m", "nepse_predictor.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NEPSE_MODEL_DIR": str(missing)},
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60)
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=10)
        assert not_ready.value.code == 503
        assert str(missing) in json.loads(not_ready.value.read())["reason"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not missing.exists()


def test_variables_that_are_not_settings_are_ignored() -> None:
    # What a Kubernetes Service named nepse-predictor injects into every pod of its namespace.
    environ = {"NEPSE_PREDICTOR_PORT": "tcp://10.0.0.1:80", "NEPSE_PREDICTOR_SERVICE_HOST": "x"}
    assert Settings.from_environment(environ) == Settings()


def test_serve_help_lists_every_setting_with_its_description() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nepse_predictor.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    help_text = " ".join(done.stdout.split())
    descriptions = setting_descriptions()
    assert set(descriptions) == set(Settings.__struct_fields__)
    for name, description in descriptions.items():
        assert f"NEPSE_{name.upper()}" in help_text
        assert description in help_text


def test_a_port_in_use_exits_with_an_error(trained_model: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve("--model-dir", str(trained_model), "--port", str(port))
    assert done.returncode != 0
    assert "address already in use" in done.stdout.lower()


def test_serve_trains_a_model_when_asked_and_none_exists(tmp_path: Path) -> None:
    port = free_port()
    target = tmp_path / "models" / "fresh"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nepse_predictor.cli",
            "serve",
            "--train-if-missing",
            "--model-dir",
            str(target),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=240)
        assert (target / "checksums.sha256").is_file()
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert f"trained {target}" in output
    assert process.returncode == 0


@pytest.mark.parametrize("option", ["--model-dir", "--models-root"])
def test_a_folder_of_versions_serves_a_verified_one(trained_model: Path, option: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nepse_predictor.cli",
            "serve",
            option,
            str(trained_model.parent),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=60)
    finally:
        process.terminate()
        process.wait(timeout=30)
