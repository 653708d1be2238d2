"""Helpers of the server tests: a `nepse-predictor serve` process and a redis-server, both
real and on loopback, plus request builders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.sample_data import generate
from testkit.net import free_port, wait_for_http
from testkit.redis_server import RedisServer as RedisServer  # the server tests import it here

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def example_row(shift: float = 0.0) -> dict[str, float]:
    """A plausible feature row (named), shifted to vary it."""
    base = {
        "ret_1": 0.004,
        "ret_5": 0.012,
        "ret_20": -0.03,
        "sma_ratio_5_20": 0.01,
        "close_sma_20": 0.015,
        "volatility_20": 0.018,
        "rsi_14": 55.0,
        "volume_z_20": 0.4,
        "range_pct": 0.025,
        "close_location": 0.6,
    }
    assert tuple(base) == FEATURE_NAMES
    return {name: value * (1.0 + float(shift)) for name, value in base.items()}


def oip_body(rows: list[dict[str, float]], **extra: Any) -> dict[str, Any]:
    flat = [row[name] for row in rows for name in FEATURE_NAMES]
    tensor = {"name": "features", "shape": [len(rows), len(FEATURE_NAMES)], "datatype": "FP32"}
    return {"inputs": [{**tensor, "data": flat}], **extra}


def sample_series(days: int = 60) -> dict[str, list[dict]]:
    """Bars per symbol from the bundled generator, oldest first."""
    series: dict[str, list[dict]] = {}
    for row in generate(days=days, seed=11):
        series.setdefault(str(row["Symbol"]), []).append(
            {
                "date": str(row["Date"]),
                "open": float(row["Open"]),
                "high": float(row["High"]),
                "low": float(row["Low"]),
                "close": float(row["Close"]),
                "volume": float(row["Volume"]),
            }
        )
    return series


class Server:
    """A `nepse-predictor serve` process on a free loopback port."""

    def __init__(
        self,
        model_dir: Path | None,
        log_path: Path,
        env: dict[str, str],
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "nepse_predictor.cli", "serve", "--port", str(self.port)]
        if model_dir is not None:
            command += ["--model-dir", str(model_dir)]
        command += args
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEPSE_")}
        full_env.pop("MODEL_PATH", None)
        full_env.update({"PYTHONUNBUFFERED": "1", **env})
        self._log = log_path.open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=log_path.parent,
        )
        try:
            wait_for_http(f"{self.base_url}/health", timeout=30)
        except TimeoutError:
            self.stop()
            raise AssertionError(f"server did not start; log:\n{self.log_text()}") from None
        self.client = httpx.Client(base_url=self.base_url, timeout=10)

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line of the log (waits for the access log's batched writes)."""
        time.sleep(0.15)
        lines = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                lines.append(orjson.loads(line))
        return lines

    def metric(self, name: str, **labels: str) -> float:
        """The value of one Prometheus sample, 0 when absent."""
        text = self.client.get("/metrics").text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            metric_name, _, label_text = head.partition("{")
            if metric_name != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                total += float(value)
        return total

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        content = body if isinstance(body, bytes | str) else orjson.dumps(body)
        headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
        return self.client.post(path, content=content, headers=headers, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if hasattr(self, "client"):
            self.client.close()
        self._log.close()
        return self.process.returncode


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of one process so far, 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")
