"""Helpers of the prediction-log tests: the real `nepse-predictor predictions` command, entries
in the form the service writes, and the compose stack's Redis persistence options."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import redis
import yaml

from testkit.paths import REPO_ROOT

STREAM = "nepse:predictions"
# Options of the compose Redis that are about where it listens, not what it keeps.
_PLACEMENT = {"--bind", "--protected-mode", "--dir", "--port"}


def predictions(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEPSE_")}
    return subprocess.run(
        [sys.executable, "-m", "nepse_predictor.cli", "predictions", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def ok(*args: str) -> subprocess.CompletedProcess[str]:
    result = predictions(*args)
    assert result.returncode == 0, result.stderr
    return result


def jsonl(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def log_entry(
    client: redis.Redis,
    request_id: str,
    model_version: str,
    probabilities: list[float],
    track: str = "stable",
    ts: float | None = None,
) -> None:
    """One entry with the fields `RedisSink.log_prediction` writes."""
    client.xadd(
        STREAM,
        {
            "request_id": request_id,
            "track": track,
            "model_version": model_version,
            "route": "/v1/predict",
            "rows": str(len(probabilities)),
            "probability": orjson.dumps(probabilities),
            "latency_ms": "1.250",
            "ts": f"{time.time() if ts is None else ts:.3f}",
        },
    )


def compose_redis_persistence() -> list[str]:
    """The persistence and memory options compose.yaml gives its Redis."""
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server", command
    options: list[str] = []
    args = iter(command[1:])
    for name in args:
        value = next(args)
        if name not in _PLACEMENT:
            options += [name, str(value)]
    return options


def snapshot(client: redis.Redis) -> dict[str, object]:
    """Everything the log and its markers hold, to compare before and after a command."""
    return {
        "log": client.xrange(STREAM),
        "marks": client.hgetall(f"{STREAM}:void"),
        "events": client.xrange(f"{STREAM}:void:events")
        if client.exists(f"{STREAM}:void:events")
        else [],
    }
