"""Void, in the prediction log, what a pulled model version already answered.

Quarantine and a failing gate pull a model version, but its predictions are already out. The
service's own command records that they are void:

    nepse-predictor predictions mark --model-version V --reason TEXT

Without a Redis URL the command is printed, for whoever can reach that Redis (it reads
NEPSE_REDIS_URL). With one, it is run: the URL goes to it in NEPSE_REDIS_URL, never on a
command line where `ps` would show a password. The mark is idempotent, so running it again is
always safe. There is one implementation of the marker: the service's.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .context import Printer
from .errors import GitopsError

DEFAULT_STREAM = "nepse:predictions"
TIMEOUT_SECONDS = 60
MAX_REASON = 1000  # what `predictions mark` accepts


@dataclass(frozen=True)
class VoidRequest:
    model_version: str
    reason: str
    redis_url: str | None = None
    stream: str = DEFAULT_STREAM

    def command(self) -> list[str]:
        cmd = ["nepse-predictor", "predictions", "mark", "--model-version", self.model_version]
        if self.stream != DEFAULT_STREAM:
            cmd += ["--stream", self.stream]
        reason = " ".join(self.reason.split())
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 3] + "..."
        return [*cmd, "--reason", reason]


def _predictor_binary() -> str | None:
    beside = Path(sys.executable).parent / "nepse-predictor"
    return str(beside) if beside.is_file() else shutil.which("nepse-predictor")


def print_void_command(request: VoidRequest, out: Printer) -> None:
    out(
        f"void the predictions model {request.model_version} already served (with "
        "NEPSE_REDIS_URL set to the prediction log's Redis):"
    )
    out(f"  {shlex.join(request.command())}")


def void_predictions(request: VoidRequest, out: Printer) -> None:
    """Run the mark when a Redis URL is given, else print it. Raises when the mark failed."""
    if not request.redis_url:
        print_void_command(request, out)
        return
    by_hand = shlex.join(request.command())
    binary = _predictor_binary()
    if binary is None:
        raise GitopsError(
            "cannot void the predictions: nepse-predictor is not installed here; "
            f"run with NEPSE_REDIS_URL set: {by_hand}"
        )
    env = {**os.environ, "NEPSE_REDIS_URL": request.redis_url}
    try:
        done = subprocess.run(
            [binary, *request.command()[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitopsError(
            f"voiding the predictions of {request.model_version} took over "
            f"{TIMEOUT_SECONDS} s; run it again with NEPSE_REDIS_URL set: {by_hand}"
        ) from None
    if done.returncode != 0:
        detail = done.stderr.strip().removeprefix("nepse-predictor predictions: error: ")
        raise GitopsError(
            f"voiding the predictions of {request.model_version} failed: {detail}\n"
            f"run it again with NEPSE_REDIS_URL set: {by_hand}"
        )
    out(done.stdout.strip())
