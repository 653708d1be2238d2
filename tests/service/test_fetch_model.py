"""fetch-model: a verified copy or nothing, over file:// and a real HTTP server."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading

import pytest

from nepse_predictor import artifacts
from nepse_predictor.errors import FetchError
from nepse_predictor.fetch import fetch_model


@pytest.fixture
def published(trained_model, tmp_path):
    """A copy of the model as it sits on a file server."""
    return shutil.copytree(trained_model, tmp_path / "published" / trained_model.name)


@pytest.fixture
def http_root(published):
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(published.parent)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _manifest_sha(model_dir):
    return artifacts.sha256_of(model_dir / artifacts.MANIFEST)


def test_fetches_over_http_and_verifies_every_file(published, http_root, tmp_path):
    dest = tmp_path / "models" / "v1"
    fetch_model(f"{http_root}/{published.name}", dest, _manifest_sha(published))
    assert artifacts.verify_model_dir(dest)["version"] == "v1"
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in published.iterdir())


def test_fetches_from_a_file_url(published, tmp_path):
    dest = tmp_path / "dest"
    fetch_model(published.as_uri(), dest)
    assert artifacts.verify_model_dir(dest)


def test_a_rerun_with_the_same_pin_keeps_the_verified_copy(published, tmp_path):
    dest = tmp_path / "dest"
    fetch_model(published.as_uri(), dest, _manifest_sha(published))
    before = (dest / "model.onnx").stat().st_mtime_ns
    fetch_model(published.as_uri(), dest, _manifest_sha(published))
    assert (dest / "model.onnx").stat().st_mtime_ns == before


def test_refuses_a_manifest_that_is_not_the_pinned_one(published, http_root, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(FetchError, match=r"checksums.sha256: sha256 \w+ does not match the pinned"):
        fetch_model(f"{http_root}/{published.name}", dest, "0" * 64)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "published"]


def test_refuses_a_file_changed_on_the_server(published, http_root, tmp_path):
    onnx = published / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-1] + b"\0")
    dest = tmp_path / "dest"
    with pytest.raises(FetchError, match=r"model.onnx: sha256 \w+ does not match the manifest"):
        fetch_model(f"{http_root}/{published.name}", dest)
    assert not dest.exists()


def test_names_a_missing_file_on_the_server(published, http_root, tmp_path):
    (published / "model.ubj").unlink()
    with pytest.raises(FetchError, match=r"model.ubj: HTTP 404"):
        fetch_model(f"{http_root}/{published.name}", tmp_path / "dest")


@pytest.mark.parametrize(
    ("url", "pin", "message"),
    [
        ("ftp://example/models/v1", None, r"scheme must be one of http, https, file"),
        ("file:///nonexistent/v1", None, r"cannot be read"),
        ("file:///tmp", "xyz", r"--sha256 'xyz': not a 64-character hex sha256"),
    ],
)
def test_explains_bad_arguments(tmp_path, url, pin, message):
    with pytest.raises(FetchError, match=message):
        fetch_model(url, tmp_path / "dest", pin, attempts=1)


def test_the_cli_exits_2_with_a_message_and_no_traceback(published, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nepse_predictor.cli",
            "fetch-model",
            "--url",
            published.as_uri(),
            "--dest",
            str(tmp_path / "d"),
            "--sha256",
            "1" * 64,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "nepse-predictor fetch-model: error:" in result.stderr
    assert "does not match the pinned" in result.stderr
    assert "Traceback" not in result.stderr
