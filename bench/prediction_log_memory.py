"""What the prediction log costs in Redis memory, for sizing a production Redis.

    .venv/bin/python bench/prediction_log_memory.py [--entries 100000]

A redis-server (Debian's, no persistence) is started on a free loopback port. The service's own
writer (`cache.RedisSink`, as `serve` runs it) logs --entries predictions of one row each, then
of 10-row batches, then of one row with NEPSE_LOG_FEATURES on, each into a fresh stream capped
at --entries. For each it prints the stream's bytes per entry (MEMORY USAGE ... SAMPLES 0, every
node counted) and the ratio to the first, the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from nepse_predictor.cache import RedisSink
from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.metrics import Metrics
from testkit.net import free_port


async def fill(url: str, stream: str, entries: int, rows: int, features: bool) -> None:
    sink = RedisSink(url, Metrics(), track="stable", stream=stream, maxlen=entries, timeout_ms=2000)
    await sink.start()
    rng = np.random.default_rng(7)
    for i in range(entries):
        probabilities = rng.random(rows).astype(np.float32)
        row = rng.normal(size=(rows, len(FEATURE_NAMES))).tolist() if features else None
        sink.log_prediction(
            f"{i:032x}", "2026.11.26-1f2e3d4", "/v1/predict", probabilities, 1.7, row
        )
        if i % 5000 == 0:
            await asyncio.sleep(0)  # let the flusher write
    while sink._queue:
        await asyncio.sleep(0.05)
    await sink.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )
        try:
            url = f"redis://127.0.0.1:{port}/0"
            client = redis.Redis.from_url(url)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            cases = [("1 row", 1, False), ("10 rows", 10, False), ("1 row + features", 1, True)]
            baseline = None
            print(f"prediction log in Redis, {args.entries} entries per case")
            print(f"{'case':<18} {'bytes/entry':>12} {'MiB total':>10} {'ratio':>7}")
            for name, rows, features in cases:
                stream = f"bench:{name}"
                asyncio.run(fill(url, stream, args.entries, rows, features))
                length = client.xlen(stream)
                size = client.memory_usage(stream, samples=0) or 0
                per_entry = size / length
                baseline = baseline or per_entry
                print(
                    f"{name:<18} {per_entry:>12.0f} {size / 2**20:>10.1f} "
                    f"{per_entry / baseline:>7.2f}"
                )
        finally:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
