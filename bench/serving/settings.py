"""The serving benchmark's constants: where things are, which CPUs, the workload's sizes, the
goals, and the one error type."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
VENV_BIN = Path(sys.executable).parent
WRK_SCRIPT = BENCH / "wrk" / "oip_post.lua"
MLSERVER_TEMPLATES = BENCH / "mlserver"
MLSERVER_REQUIREMENTS = BENCH / "requirements-mlserver.txt"
MLSERVER_VENV = REPO / ".tools" / "bench" / "mlserver-venv"
RESULTS_FILE = BENCH / "results" / "latest.json"

MODEL_NAME = "nepse-predictor"
INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
READY_PATH = f"/v2/models/{MODEL_NAME}/ready"
SERVER_CPU = 0
CLIENT_CPU = 1
BATCH_ROWS = 1000
BATCH_CONNECTIONS = 4
PARITY_ROWS = 16
PARITY_TOLERANCE = 1e-5
READY_POLL_SECONDS = 0.005
READY_TIMEOUT_SECONDS = 90.0
LOG_TAIL_LINES = 40

SERVER_ORDER = ("ours", "naive", "mlserver", "hello", "loop")
LABELS = {
    "ours": "nepse-predictor",
    "naive": "naive joblib",
    "mlserver": "MLServer",
    "hello": "hello (floor)",
    "loop": "uvloop alone",
}
# Goals, each a ratio to a server measured in the same run.
GOAL_SPEEDUP = 5.0  # single-row req/s, to MLServer's
GOAL_BATCH_SPEEDUP = 2.0  # 1,000-row batch rows/s, to MLServer's
GOAL_OF_FLOOR = 0.9  # single-row req/s, to hello-world's
GOAL_P99_FRACTION = 0.1  # c=16 p99, to MLServer's
GOAL_READY_OF_FLOOR = 1.2  # start-to-ready, to hello-world's
DISTURBED = 0.05  # other processes ran on the benchmark's CPUs for more than this share
RUNS = ("c1", "c16", "batch")


class BenchError(Exception):
    """The run cannot go on; the message says which server or tool and what went wrong."""
