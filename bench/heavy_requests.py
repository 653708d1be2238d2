"""Do heavy requests starve small ones? One server, measured in one run:

    .venv/bin/python bench/heavy_requests.py [--seconds 10]

1. alone: one client sends single-row /v1/predict requests back to back; latency recorded;
2. loaded: the same, while two other clients send the largest /v1/predict/bars request the
   default limits allow (NEPSE_MAX_BARS bars in series of 21), back to back.

Run it with NEPSE_HEAVY_WORKERS=0 to see the same load with large bodies parsed on a thread of
the server process instead of a worker process (the baseline it improves on).

Prints p50 and p99 of the small requests in both phases, their ratio (loaded / alone), the
heavy request's time, and the server's CPU time per heavy request (from /proc).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from nepse_predictor.config import Settings  # noqa: E402
from nepse_predictor.features import FEATURE_NAMES, MIN_BARS  # noqa: E402
from nepse_predictor.training import train  # noqa: E402
from testkit.net import free_port, wait_for_http  # noqa: E402

SMALL = orjson.dumps({"features": dict.fromkeys(FEATURE_NAMES, 0.01)})


def heavy_body() -> bytes:
    bars = [
        {"open": 100.0, "high": 101.0 + i % 3, "low": 99.0, "close": 100.5, "volume": 1000.0 + i}
        for i in range(MIN_BARS)
    ]
    count = Settings.from_environment().max_bars // MIN_BARS
    return orjson.dumps({"series": [{"symbol": f"S{i}", "bars": bars} for i in range(count)]})


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> float:
    started = time.perf_counter()
    conn.request("POST", path, body, {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}")
    return time.perf_counter() - started


def small_latencies(port: int, seconds: float) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.append(post(conn, "/v1/predict", SMALL))
    conn.close()
    return out


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """CPU time of the server process and its worker processes."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    pids.append(int(entry.name))
            except (OSError, IndexError):
                continue
    ticks = 0
    for each in pids:
        try:
            fields = _stat(each)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase (default 10)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nepse-heavy-"))
    model = train(out_root=work, version="bench", seed=1, with_joblib=False).model_dir
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEPSE_")}
    env["NEPSE_ACCESS_LOG"] = "false"
    env["NEPSE_HEAVY_WORKERS"] = os.environ.get("NEPSE_HEAVY_WORKERS", "1")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "nepse_predictor.cli", "serve"),
            *("--model-dir", str(model), "--port", str(port)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=60)
        small_latencies(port, 1.0)  # warm-up
        alone = small_latencies(port, args.seconds)

        body = heavy_body()
        stop = threading.Event()
        heavy: list[float] = []

        def hammer() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while not stop.is_set():
                heavy.append(post(conn, "/v1/predict/bars", body))
            conn.close()

        cpu_before = cpu_seconds(server.pid)
        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for thread in threads:
            thread.start()
        loaded = small_latencies(port, args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)

    workers = env["NEPSE_HEAVY_WORKERS"]
    print(f"NEPSE_HEAVY_WORKERS={workers}")
    print(
        f"heavy request: {len(body) / 1e6:.1f} MB, "
        f"{Settings.from_environment().max_bars} bars (NEPSE_MAX_BARS)"
    )
    print(f"  {statistics.median(heavy) * 1000:.0f} ms each (median of {len(heavy)}); CPU of the")
    print(
        f"  server and its workers: {cpu / max(len(heavy), 1) * 1000:.0f} ms per heavy request "
        "(the small ones' share included)"
    )
    print(f"small /v1/predict, {len(alone)} alone, {len(loaded)} beside two heavy clients:")
    print(f"  p50 {p(alone, 50):.2f} ms alone, {p(loaded, 50):.2f} ms loaded")
    print(f"  p99 {p(alone, 99):.2f} ms alone, {p(loaded, 99):.2f} ms loaded")
    print(f"  p99 ratio loaded / alone: {p(loaded, 99) / p(alone, 99):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
