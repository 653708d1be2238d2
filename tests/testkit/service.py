"""`nepse-predictor serve` processes on loopback, one track each, without Redis unless a
test's settings name one. Every test tier that needs a real server starts it here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from testkit.net import free_port, wait_for_http
from testkit.processes import stop_process

SERVICE = Path(sys.executable).parent / "nepse-predictor"


class ServiceProcess:
    """Started at once; ``wait()`` for it. A ``model_dir`` that does not exist makes a server
    that runs without a model: /health answers 200, /ready and predictions 503.

    ``settings`` (NEPSE_* variables) come on top of the test's environment; requests are
    logged only with ``log_requests`` (read back with ``access_log()``)."""

    def __init__(
        self,
        name: str,
        model_dir: Path,
        track: str,
        logs: Path,
        settings: Mapping[str, str] | None = None,
        log_requests: bool = False,
    ) -> None:
        self.name = name
        self.track = track
        self.model_dir = model_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.log_path = logs / f"{name}.log"
        env = {
            **os.environ,
            "NEPSE_TRACK": track,
            "NEPSE_HOST": "127.0.0.1",
            "NEPSE_ACCESS_LOG": str(log_requests).lower(),
        }
        env.pop("NEPSE_REDIS_URL", None)
        env.update(settings or {})
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(SERVICE), "serve", "--model-dir", str(model_dir), "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout: float = 60) -> None:
        """Until it is ready, or only live when it has no model."""
        path = "/ready" if self.model_dir.exists() else "/health"
        try:
            wait_for_http(f"{self.url}{path}", timeout=timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; log {self.log_path}:\n{self.log_path.read_text()}") from exc

    def stop(self) -> None:
        stop_process(self.process, grace=15)

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access-log lines, one per request it answered."""
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "request":
                out.append(entry)
        return out
