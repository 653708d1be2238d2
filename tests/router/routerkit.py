"""The chart's nginx router for real: its configuration rendered by `helm template` with the
upstreams pointed at loopback, Debian's nginx running it, and real `nepse-predictor serve`
processes behind it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from testkit.net import free_port, wait_for_http
from testkit.paths import REPO_ROOT
from testkit.service import SERVICE

CHART = REPO_ROOT / "charts" / "nepse-predictor"
TOOLS = Path(os.environ.get("NEPSE_TOOLS_DIR", REPO_ROOT / ".tools"))
HELM = TOOLS / "bin" / "helm4"
NGINX = Path(os.environ.get("NEPSE_NGINX", "/usr/sbin/nginx"))

SLOTS = {
    track: {"imageTag": "0.1.0", "modelVersion": "2026.11.01-1a2b3c4"}
    for track in ("stable", "canary", "shadow", "blue", "green")
}


def missing_tools() -> list[str]:
    problems = []
    if not os.access(HELM, os.X_OK):
        problems.append(f"{HELM} is missing: run `make tools` (scripts/install-tools.sh)")
    if not os.access(NGINX, os.X_OK):
        problems.append(
            f"{NGINX} is missing: run `make tools` (it installs Debian's nginx) or "
            "`apt-get install nginx`"
        )
    if not os.access(SERVICE, os.X_OK):
        problems.append(f"{SERVICE} is missing: install the service into the venv (make venv)")
    return problems


def render_router_config(values: dict, upstreams: dict[str, str], port: int, temp_dir: Path) -> str:
    """nginx.conf from the chart's router ConfigMap, exactly as `helm template` renders it."""
    router = values.get("traffic", {}).get("router", {})
    merged = {
        "slots": SLOTS,
        **values,
        "traffic": {
            "provider": "router",
            "router": {
                **router,
                "upstreams": upstreams,
                "listenAddress": "127.0.0.1",
                "port": port,
                "tempDir": str(temp_dir),
                "workerProcesses": 2,
            },
        },
    }
    values_file = temp_dir / "router-values.yaml"
    values_file.write_text(yaml.safe_dump(merged))
    result = subprocess.run(
        [
            str(HELM),
            "template",
            "nepse-predictor",
            str(CHART),
            "--namespace",
            "nepse-test",
            "-f",
            str(values_file),
            "--show-only",
            "templates/router-configmap.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"helm template failed:\n{result.stderr}")
    return yaml.safe_load(result.stdout)["data"]["nginx.conf"]


class Router:
    """Debian's nginx in the foreground with its own prefix, config and pid file in a temp dir."""

    def __init__(self, workdir: Path, upstreams: dict[str, str]) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.upstreams = upstreams
        self.port = free_port()
        self.conf = workdir / "nginx.conf"
        self.log_path = workdir / "router.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self, values: dict) -> str:
        text = render_router_config(values, self.upstreams, self.port, self.workdir)
        self.conf.write_text(text)
        check = self._nginx("-t")
        if check.returncode != 0:
            raise AssertionError(f"nginx -t refused the rendered config:\n{check.stderr}\n{text}")
        return text

    def _nginx(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(NGINX), "-p", str(self.workdir), "-c", str(self.conf), "-e", "stderr", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def start(self, values: dict) -> None:
        self.configure(values)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(NGINX),
                "-p",
                str(self.workdir),
                "-c",
                str(self.conf),
                "-e",
                "stderr",
                "-g",
                "daemon off;",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_http(f"{self.url}/router-healthz", timeout=20)

    def reload(self, values: dict) -> float:
        """Render new values and `nginx -s reload`; returns the time the signal was sent."""
        self.configure(values)
        sent = time.monotonic()
        result = self._nginx("-s", "reload")
        if result.returncode != 0:
            raise AssertionError(f"nginx -s reload failed:\n{result.stderr}")
        return sent

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def access_log(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out
