"""Stopping a process a test started: SIGTERM, then SIGKILL when it outlives its grace."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen | None, grace: float = 10) -> None:
    """Stop ``proc`` if it still runs; returns once it has exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
