"""What the benchmark needs besides the service's own environment: wrk (from the tool step),
MLServer in its own virtual environment, compiled bytecode, and the versions it reports."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from serving.settings import (
    MLSERVER_REQUIREMENTS,
    MLSERVER_VENV,
    REPO,
    VENV_BIN,
    BenchError,
)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed: run `make tools` (it installs wrk from Debian)")
    return found


def compile_sources() -> None:
    """Bytecode for the service's own modules, as the image has it: a start then reads it
    instead of compiling every module (PYTHONDONTWRITEBYTECODE keeps Python from caching)."""
    import compileall

    for folder in ("service/src", "gitops/src"):
        compileall.compile_dir(REPO / folder, quiet=1)


def ensure_mlserver_venv() -> Path:
    """.tools/bench/mlserver-venv with the pinned lock, on the interpreter the service runs on
    (a comparison on two interpreters would measure them); rebuilt when either changes."""
    lock = MLSERVER_REQUIREMENTS.read_bytes()
    interpreter = f"{os.path.realpath(sys._base_executable)} {sys.version}".encode()
    digest = hashlib.sha256(lock + b"\n--no-deps --compile-bytecode\n" + interpreter).hexdigest()
    stamp = MLSERVER_VENV / ".requirements.sha256"
    mlserver = MLSERVER_VENV / "bin" / "mlserver"
    if mlserver.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return mlserver
    print(
        f"creating {MLSERVER_VENV.relative_to(REPO)} from "
        f"{MLSERVER_REQUIREMENTS.relative_to(REPO)} (first run: a minute or two) ...",
        flush=True,
    )
    shutil.rmtree(MLSERVER_VENV, ignore_errors=True)
    MLSERVER_VENV.parent.mkdir(parents=True, exist_ok=True)
    python = MLSERVER_VENV / "bin" / "python"
    uv = VENV_BIN / "uv"
    if uv.is_file():
        commands = [
            [str(uv), "venv", "-q", "--python", sys.executable, str(MLSERVER_VENV)],
            [
                str(uv),
                "pip",
                "install",
                "-q",
                "--python",
                str(python),
                "--no-deps",
                "--compile-bytecode",
                "-r",
                str(MLSERVER_REQUIREMENTS),
            ],
        ]
    else:
        commands = [
            [sys.executable, "-m", "venv", str(MLSERVER_VENV)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "-r",
                str(MLSERVER_REQUIREMENTS),
            ],
        ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(MLSERVER_VENV, ignore_errors=True)
            raise BenchError(
                f"setting up the MLServer environment failed: {' '.join(command)}\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
    if not mlserver.is_file():
        raise BenchError(f"{mlserver} is missing after installing {MLSERVER_REQUIREMENTS.name}")
    stamp.write_text(digest + "\n")
    return mlserver


def command_output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (done.stdout + done.stderr).strip().splitlines()  # wrk --version exits 1
    return lines[0] if lines else f"unknown (exit {done.returncode})"


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    versions = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions
