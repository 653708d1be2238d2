"""Fixtures of the container tier: the local base image, the service and Redis images, a
model folder to mount, and podman's Docker-API socket. All of them are real (podman)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from containerkit import (
    BASE_IMAGE,
    MEASUREMENTS,
    REDIS_IMAGE,
    SCRIPTS,
    SIZE_GOAL_MB,
    TEST_IMAGE,
    XGBOOST_IMAGE,
    XGBOOST_SIZE_CEILING_MB,
    describe_layers,
    image_exists,
    image_size_mb,
    record,
    require_tools,
    run,
    tool_env,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "container: builds or runs container images with podman (needs `make tools`)"
    )


def pytest_terminal_summary(terminalreporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("container measurements")
        for name, value in MEASUREMENTS.items():
            terminalreporter.write_line(f"{name:38s} {value}")


@pytest.fixture(scope="session")
def podman() -> None:
    require_tools("podman", "runc", "debootstrap", "curl")


@pytest.fixture(scope="session")
def base_image(podman: None) -> str:
    """The Debian bookworm minbase image made with debootstrap; built once, then cached."""
    cached = image_exists(BASE_IMAGE)
    start = time.monotonic()
    run([str(SCRIPTS / "build-base.sh")], timeout=600)
    if cached:
        record("base image build", "cached (delete the image or run build-base.sh --force)")
    else:
        record("base image build", f"{time.monotonic() - start:.1f} s")
    record("base image size", f"{image_size_mb(BASE_IMAGE):.1f} MB")
    return BASE_IMAGE


def _build_service_image(tag: str, *extra: str, timeout: float = 900) -> tuple[float, int, int]:
    """Build with scripts/container/build-image.sh; returns (seconds, cached steps, steps)."""
    start = time.monotonic()
    result = run([str(SCRIPTS / "build-image.sh"), "--tag", tag, *extra], timeout=timeout)
    seconds = time.monotonic() - start
    # FROM steps print no cache line of their own; count the others.
    steps = len(re.findall(r"^\[\d+/\d+\] STEP \d+/\d+: (?!FROM )", result.stdout, re.MULTILINE))
    cached = len(re.findall(r"^--> Using cache ", result.stdout, re.MULTILINE))
    return seconds, cached, steps


@pytest.fixture(scope="session")
def service_image(base_image: str) -> str:
    """The predictor image built from the repository's Dockerfile on the local base image.

    Built twice: the first build uses whatever layers are cached (all of them are rebuilt on a
    fresh machine: a cold build); the second must come entirely from the cache (warm).
    """
    seconds, cached, steps = _build_service_image(TEST_IMAGE)
    kind = "cold" if cached == 0 else f"{cached}/{steps} steps cached"
    record("service image build (first)", f"{seconds:.1f} s ({kind})")
    seconds, cached, steps = _build_service_image(TEST_IMAGE)
    record("service image build (warm)", f"{seconds:.1f} s ({cached}/{steps} steps cached)")
    size = image_size_mb(TEST_IMAGE)
    verdict = "within" if size <= SIZE_GOAL_MB else "over"
    record("service image size", f"{size:.1f} MB ({verdict} the {SIZE_GOAL_MB:.0f} MB goal)")
    record("service image layers", describe_layers(TEST_IMAGE))
    return TEST_IMAGE


@pytest.fixture(scope="session")
def xgboost_image(service_image: str) -> str:
    """The image with the XGBoost fallback (BACKENDS=onnx,xgboost). Built after the default
    one, so the stages they share (the base with Python, the build tools) come from the cache."""
    seconds, cached, steps = _build_service_image(XGBOOST_IMAGE, "--backends", "onnx,xgboost")
    record("xgboost image build", f"{seconds:.1f} s ({cached}/{steps} steps cached)")
    size = image_size_mb(XGBOOST_IMAGE)
    verdict = "within" if size <= XGBOOST_SIZE_CEILING_MB else "over"
    record(
        "xgboost image size",
        f"{size:.1f} MB ({verdict} its {XGBOOST_SIZE_CEILING_MB:.0f} MB ceiling)",
    )
    record("xgboost image layers", describe_layers(XGBOOST_IMAGE))
    return XGBOOST_IMAGE


@pytest.fixture(scope="session")
def redis_image(base_image: str) -> str:
    """Redis from Debian's redis-server on the same local base image; built once, cached."""
    run([str(SCRIPTS / "build-redis.sh")], timeout=600)
    return REDIS_IMAGE


@pytest.fixture(scope="session")
def models_dir(trained_model: Path) -> Iterator[Path]:
    """A host folder holding the session's trained model (version `v1`), readable by the
    container's uid: the session's temporary folders are private to root."""
    root = Path(tempfile.mkdtemp(prefix="nepse-container-models-"))
    root.chmod(0o755)
    shutil.copytree(trained_model, root / trained_model.name)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_host(podman: None) -> Iterator[str]:
    """podman's Docker-compatible API on a private unix socket, for docker-compose."""
    require_tools("docker-compose")
    # A short path: unix socket paths are limited to 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="nepse-podman-"))
    socket = folder / "podman.sock"
    env = dict(os.environ, NEPSE_PODMAN_SOCKET=str(socket))
    script = str(SCRIPTS / "podman-socket.sh")
    run([script, "start"], env=tool_env(**env), timeout=60)
    try:
        yield f"unix://{socket}"
    finally:
        run([script, "stop"], env=tool_env(**env), timeout=60, check=False)
        shutil.rmtree(folder, ignore_errors=True)
