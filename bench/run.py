"""Serving benchmark: the same trained model served four ways on this machine, in one run.

    .venv/bin/python bench/run.py            (make bench; --help for the options)

The servers, each a single process pinned to CPU 0 (wrk is pinned to CPU 1; all on 127.0.0.1):

  ours      `nepse-predictor serve` (ONNX Runtime), NEPSE_ACCESS_LOG=false
  naive     bench/apps/naive_joblib_app.py: the chapter's FastAPI + joblib + predict_proba
  mlserver  Seldon MLServer + mlserver-xgboost on the model's model.ubj, in its own virtual
            environment (.tools/bench/mlserver-venv, from bench/requirements-mlserver.txt),
            parallel_workers 0 by default: inference in the server process, its fastest
            setting on one CPU (the default of 1 adds a hop to a worker process)
  hello     bench/apps/hello_app.py: FastAPI reading the body and answering a constant, the
            framework floor

None of them writes an access log. The model is trained once into a temporary folder. Every
server gets the same bytes from wrk (bench/wrk/oip_post.lua) on
POST /v2/models/nepse-predictor/infer: one FP32 [N, 10] tensor of real held-out feature rows
and no `outputs` member, so each answers its default output, which is P(up) for all three model
servers. Steps:

  1. parity: each model server's P(up) for the same 16 rows must match XGBoost's to 1e-5;
     nothing is measured otherwise
  2. start-up: spawn -> first 200 from GET /v2/models/nepse-predictor/ready, polled every 5 ms,
     median of --starts starts (round robin over the servers)
  3. load: all servers up, measured in --rounds rounds; each round gives every server a
     warm-up, then 1 and 16 connections with one row per request, then 1,000 rows per request
     (4 connections); reported per run: the median (lower middle) by throughput of the rounds
     that other processes did not disturb (their time on CPU 0 and wrk's wait for CPU 1 both
     under 5% of the run), else the least disturbed round. Servers and wrk run at nice -10
     when started as root (--nice), to keep other work on a shared machine out of the way.

The table shows each number and its ratio to MLServer, nepse-predictor's ratio to the
hello-world floor, and the goals with PASS/FAIL; bench/results/latest.json keeps it all.

Exit status: 0 when the run completed (goals may still FAIL; --strict turns that into 3), 1 when
it could not measure (a server did not come up, answers differ, wrk failed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
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

SERVER_ORDER = ("ours", "naive", "mlserver", "hello")
LABELS = {
    "ours": "nepse-predictor",
    "naive": "naive joblib",
    "mlserver": "MLServer",
    "hello": "hello (floor)",
}
GOAL_SPEEDUP = 5.0
GOAL_OF_FLOOR = 0.9
GOAL_P99_FRACTION = 0.1
GOAL_READY_SECONDS = 1.0
DISTURBED = 0.05  # other processes ran on the benchmark's CPUs for more than this share
RUNS = ("c1", "c16", "batch")


class BenchError(Exception):
    """The run cannot go on; the message says which server or tool and what went wrong."""


# --- processes ------------------------------------------------------------------------------


@dataclass
class ServerSpec:
    key: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    # The `outputs` member that asks this server for P(up); None: not a model (hello).
    parity_outputs: list[dict[str, str]] | None


@dataclass
class Running:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started: float


@dataclass
class Processes:
    """Every server process this run started, so all of them are stopped whatever happens.

    Each server runs in its own session (process group): MLServer forks workers, and stopping
    the group stops them too.
    """

    logs: Path
    nice: int = 0
    running: list[Running] = field(default_factory=list)
    _count: int = 0

    def start(self, spec: ServerSpec, port: int) -> Running:
        self._count += 1
        log_path = self.logs / f"{spec.key}-{self._count}.log"
        argv = [arg.replace("{port}", str(port)) for arg in spec.argv]
        with log_path.open("wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen(
                [*nice_prefix(self.nice), "taskset", "-c", str(SERVER_CPU), *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=spec.env,
                cwd=spec.cwd,
                start_new_session=True,
            )
        server = Running(spec, process, port, log_path, started)
        self.running.append(server)
        return server

    def stop(self, server: Running, grace: float = 10.0) -> None:
        process = server.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Workers of a stopped server may outlive their parent for a moment.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if server in self.running:
            self.running.remove(server)

    def stop_all(self) -> None:
        for server in list(self.running):
            try:
                self.stop(server, grace=5.0)
            except Exception as exc:  # keep stopping the others
                print(
                    f"warning: could not stop {server.spec.key} (pid {server.process.pid}): {exc}",
                    file=sys.stderr,
                )


def nice_prefix(nice: int) -> list[str]:
    return ["nice", "-n", str(nice)] if nice else []


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"    (log {path} unreadable: {exc})"
    tail = text.splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in tail) if tail else "    (log is empty)"


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_busy_seconds(cpu: int) -> float:
    """CPU time spent on `cpu` by anything (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                ticks = [int(x) for x in line.split()[1:9]]
                return (sum(ticks[:3]) + sum(ticks[5:8])) / _TICKS
    return 0.0


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process in process group `pgid`."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def waited_seconds(pid: int) -> float:
    """Time the threads of `pid` spent runnable but waiting for a CPU, so far."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    import socket

    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def http_call(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30.0
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(server: Running, timeout: float = READY_TIMEOUT_SECONDS) -> float:
    """Seconds from spawning the process to its first 200 from the model's ready route."""
    name = LABELS[server.spec.key]
    deadline = server.started + timeout
    tick = server.started
    last = "no answer yet"
    while True:
        try:
            status, _ = http_call(server.port, "GET", READY_PATH, timeout=1.0)
            if status == 200:
                return time.perf_counter() - server.started
            last = f"HTTP {status}"
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
        except http.client.HTTPException as exc:  # something else answered on the port
            last = f"{type(exc).__name__}: {str(exc)[:80]!r}"
        code = server.process.poll()
        if code is not None:
            raise BenchError(
                f"{name} exited with status {code} before it was ready "
                f"(GET {READY_PATH} on port {server.port}: {last}). "
                f"Last lines of {server.log_path}:\n{log_tail(server.log_path)}"
            )
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(
                f"{name} was not ready within {timeout:.0f} s (GET {READY_PATH} on port "
                f"{server.port}: {last}). Last lines of {server.log_path}:\n"
                f"{log_tail(server.log_path)}"
            )
        while tick <= now:
            tick += READY_POLL_SECONDS
        time.sleep(tick - now)


# --- setup ----------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("wrk is not installed; install it (Debian: apt-get install -y wrk)")
    print("installing wrk from Debian (apt-get install -y wrk) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    found = shutil.which("wrk")
    if not found:
        raise BenchError("apt-get installed wrk but it is not on PATH")
    return found


def ensure_mlserver_venv() -> Path:
    """.tools/bench/mlserver-venv with the pinned lock; rebuilt only when the lock changes."""
    lock = MLSERVER_REQUIREMENTS.read_bytes()
    digest = hashlib.sha256(lock).hexdigest()
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


# --- model and payloads ---------------------------------------------------------------------


@dataclass
class Workload:
    model_dir: Path
    metadata: dict[str, Any]
    single_body: Path
    batch_body: Path
    parity_rows: np.ndarray
    reference: np.ndarray


def _number(value: np.float32) -> str:
    """The shortest decimal that reads back as exactly this float32."""
    text = np.format_float_positional(value, unique=True, trim="-")
    if np.float32(float(text)) != value:
        text = repr(float(value))
    return text


def oip_body(rows: np.ndarray, outputs: list[dict[str, str]] | None = None) -> bytes:
    data = ",".join(_number(v) for v in rows.astype(np.float32).ravel())
    shape = f"[{rows.shape[0]},{rows.shape[1]}]"
    extra = f',"outputs":{json.dumps(outputs, separators=(",", ":"))}' if outputs else ""
    return (
        f'{{"inputs":[{{"name":"input-0","shape":{shape},"datatype":"FP32",'
        f'"data":[{data}]}}]{extra}}}'
    ).encode()


def prepare_workload(work: Path) -> Workload:
    """Train the model once and build the request bodies from real held-out feature rows."""
    from xgboost import Booster, DMatrix

    from nepse_predictor.data import load_ohlcv
    from nepse_predictor.dataset import time_split
    from nepse_predictor.sample_data import BUNDLED_SAMPLE
    from nepse_predictor.training import train

    started = time.perf_counter()
    result = train(out_root=work / "models", version="bench")
    print(
        f"trained model {result.metadata['version']} in {time.perf_counter() - started:.1f} s "
        f"-> {result.model_dir}",
        flush=True,
    )

    rows = time_split(load_ohlcv(BUNDLED_SAMPLE)).x_test.astype(np.float32)
    if len(rows) < PARITY_ROWS:
        raise BenchError(f"only {len(rows)} held-out rows; the parity check needs {PARITY_ROWS}")
    batch = np.resize(rows, (BATCH_ROWS, rows.shape[1]))  # repeats rows if there are fewer
    parity_rows = rows[:PARITY_ROWS]
    booster = Booster(model_file=str(result.model_dir / "model.ubj"))
    reference = booster.predict(DMatrix(parity_rows)).astype(np.float64)

    single_body = work / "single.json"
    single_body.write_bytes(oip_body(rows[:1]))
    batch_body = work / "batch.json"
    batch_body.write_bytes(oip_body(batch))
    return Workload(
        result.model_dir, result.metadata, single_body, batch_body, parity_rows, reference
    )


# --- servers --------------------------------------------------------------------------------


def server_specs(work: Path, workload: Workload, mlserver: Path | None) -> dict[str, ServerSpec]:
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEPSE_", "MLSERVER_")) and k != "MODEL_PATH"
    }
    base_env["PYTHONUNBUFFERED"] = "1"
    uvicorn = str(VENV_BIN / "uvicorn")
    uvicorn_args = [
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--no-access-log",
        "--log-level",
        "warning",
        "--app-dir",
        str(BENCH / "apps"),
    ]
    specs = {
        "ours": ServerSpec(
            "ours",
            [
                str(VENV_BIN / "nepse-predictor"),
                "serve",
                "--model-dir",
                str(workload.model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            {**base_env, "NEPSE_ACCESS_LOG": "false"},
            REPO,
            [{"name": "probability"}],
        ),
        "naive": ServerSpec(
            "naive",
            [uvicorn, "naive_joblib_app:app", *uvicorn_args],
            {**base_env, "MODEL_PATH": str(workload.model_dir / "model.joblib")},
            REPO,
            [{"name": "probability"}],
        ),
        "hello": ServerSpec(
            "hello", [uvicorn, "hello_app:app", *uvicorn_args], base_env, REPO, None
        ),
    }
    if mlserver is not None:
        repository = work / "mlserver"
        repository.mkdir(exist_ok=True)
        model_settings = json.loads((MLSERVER_TEMPLATES / "model-settings.json").read_text())
        model_settings["parameters"]["uri"] = str(workload.model_dir / "model.ubj")
        model_settings["parameters"]["version"] = workload.metadata["version"]
        (repository / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
        specs["mlserver"] = ServerSpec(
            "mlserver",
            [str(mlserver), "start", str(repository)],
            base_env,
            repository,
            # mlserver-xgboost loads this binary:logistic booster through XGBRegressor (its
            # first try succeeds with xgboost 3), so `predict` is P(up) and `predict_proba`
            # is refused.
            [{"name": "predict"}],
        )
    return specs


def write_mlserver_settings(spec: ServerSpec, ports: list[int], parallel_workers: int) -> None:
    """settings.json for one start: the template with this start's free ports."""
    settings = json.loads((MLSERVER_TEMPLATES / "settings.json").read_text())
    settings.update(
        http_port=ports[0],
        grpc_port=ports[1],
        metrics_port=ports[2],
        parallel_workers=parallel_workers,
        metrics_dir=str(spec.cwd / ".metrics"),
        environments_dir=str(spec.cwd / ".envs"),
    )
    (spec.cwd / "settings.json").write_text(json.dumps(settings, indent=2))


class Bench:
    def __init__(
        self,
        processes: Processes,
        specs: dict[str, ServerSpec],
        args: Any,
        workload: Workload,
        work: Path,
    ) -> None:
        self.processes = processes
        self.specs = specs
        self.args = args
        self.workload = workload
        self.work = work

    def launch(self, key: str) -> Running:
        spec = self.specs[key]
        ports = free_ports(3)  # MLServer also listens for gRPC and metrics
        if key == "mlserver":
            write_mlserver_settings(spec, ports, self.args.mlserver_workers)
        return self.processes.start(spec, ports[0])

    @contextlib.contextmanager
    def serve(self, key: str) -> Iterator[tuple[Running, float]]:
        server = self.launch(key)
        try:
            yield server, wait_ready(server)
        finally:
            self.processes.stop(server)

    # parity

    def probabilities(self, server: Running) -> np.ndarray:
        spec = server.spec
        body = oip_body(self.workload.parity_rows, spec.parity_outputs)
        status, payload = http_call(server.port, "POST", INFER_PATH, body)
        name = LABELS[spec.key]
        if status != 200:
            raise BenchError(f"{name}: POST {INFER_PATH} answered {status}: {payload[:500]!r}")
        outputs = json.loads(payload).get("outputs") or []
        wanted = spec.parity_outputs[0]["name"] if spec.parity_outputs else ""
        for output in outputs:
            if output.get("name") == wanted:
                values = np.asarray(output["data"], dtype=np.float64)
                shape = output.get("shape") or [len(values)]
                values = values.reshape(shape)
                if values.ndim == 2 and values.shape[1] == 2:  # [P(down), P(up)]
                    return values[:, 1]
                return values.ravel()
        raise BenchError(f"{name}: the answer has no output named {wanted!r}: {payload[:500]!r}")

    def check_load_body(self, server: Running) -> None:
        for body_path in (self.workload.single_body, self.workload.batch_body):
            status, payload = http_call(server.port, "POST", INFER_PATH, body_path.read_bytes())
            if status != 200:
                raise BenchError(
                    f"{LABELS[server.spec.key]}: the benchmark body {body_path.name} got HTTP "
                    f"{status}: {payload[:500]!r}"
                )

    def parity(self) -> dict[str, Any]:
        print(
            f"\nParity: P(up) for {PARITY_ROWS} held-out rows vs XGBoost in-process "
            f"(tolerance {PARITY_TOLERANCE:g})"
        )
        results: dict[str, Any] = {}
        failed = []
        for key in self.specs:
            with self.serve(key) as (server, _):
                self.check_load_body(server)
                if server.spec.parity_outputs is None:
                    print(f"  {LABELS[key]:<16} constant answer (no model); bodies accepted")
                    results[key] = {"checked": False}
                    continue
                p = self.probabilities(server)
            if p.shape != self.workload.reference.shape:
                raise BenchError(
                    f"{LABELS[key]}: {p.shape[0]} probabilities for {PARITY_ROWS} rows"
                )
            diff = float(np.max(np.abs(p - self.workload.reference)))
            ok = diff <= PARITY_TOLERANCE
            results[key] = {
                "checked": True,
                "max_abs_diff": diff,
                "pass": ok,
                "first_row": float(p[0]),
            }
            print(
                f"  {LABELS[key]:<16} max |dp| = {diff:.2e}  p(row 0) = {p[0]:.6f}  "
                f"{'OK' if ok else 'MISMATCH'}"
            )
            if not ok:
                failed.append(LABELS[key])
        print(f"  {'xgboost':<16} reference       p(row 0) = {self.workload.reference[0]:.6f}")
        if failed:
            raise BenchError(
                f"{', '.join(failed)} disagree with XGBoost by more than "
                f"{PARITY_TOLERANCE:g}; nothing was measured"
            )
        return results

    # start-up

    def startup(self) -> dict[str, Any]:
        print(
            f"\nStart-up: spawn -> first 200 from GET {READY_PATH} "
            f"(polled every {READY_POLL_SECONDS * 1000:.0f} ms), {self.args.starts} starts each"
        )
        samples: dict[str, list[float]] = {key: [] for key in self.specs}
        for _ in range(self.args.starts):  # round robin, so a busy moment hits all alike
            for key in self.specs:
                with self.serve(key) as (_, seconds):
                    samples[key].append(seconds)
        results = {}
        for key, times in samples.items():
            results[key] = {"samples_s": times, "median_s": statistics.median(times)}
            shown = ", ".join(f"{t:.3f}" for t in times)
            print(f"  {LABELS[key]:<16} median {statistics.median(times):.3f} s  ({shown})")
        return results

    # load

    def wrk(
        self, server: Running, body: Path, connections: int, seconds: float, tag: str
    ) -> dict[str, Any]:
        result_path = self.work / f"wrk-{server.spec.key}-{tag}.json"
        result_path.unlink(missing_ok=True)
        url = f"http://127.0.0.1:{server.port}{INFER_PATH}"
        argv = [
            *nice_prefix(self.args.nice),
            "taskset",
            "-c",
            str(CLIENT_CPU),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(WRK_SCRIPT),
            url,
        ]
        env = {**os.environ, "BENCH_BODY": str(body), "BENCH_RESULT": str(result_path)}
        log_path = self.work / "logs" / f"wrk-{server.spec.key}-{tag}.txt"
        name = LABELS[server.spec.key]
        busy_before = cpu_busy_seconds(SERVER_CPU)
        server_before = group_cpu_seconds(server.process.pid)
        wrk_before = children_cpu_seconds()
        started = time.perf_counter()
        with log_path.open("w") as log:
            log.write(" ".join(argv) + "\n")
            log.flush()
            wrk = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            # wrk's run-queue wait is read while it runs (its /proc entry goes when it exits).
            wrk_waited = 0.0
            try:
                while True:
                    try:
                        code = wrk.wait(timeout=0.25)
                        break
                    except subprocess.TimeoutExpired:
                        wrk_waited = max(wrk_waited, waited_seconds(wrk.pid))
                        if time.perf_counter() - started > seconds + 120:
                            raise BenchError(f"wrk against {name} did not finish") from None
            finally:
                if wrk.poll() is None:
                    wrk.kill()
                    wrk.wait()
        wall = time.perf_counter() - started
        server_cpu = group_cpu_seconds(server.process.pid) - server_before
        wrk_cpu = children_cpu_seconds() - wrk_before
        others_on_server_cpu = max(0.0, cpu_busy_seconds(SERVER_CPU) - busy_before - server_cpu)
        if code != 0 or not result_path.is_file():
            output = log_path.read_text(errors="replace")
            raise BenchError(f"wrk against {name} failed (exit {code}):\n{output[-3000:]}")
        result = json.loads(result_path.read_text())
        errors = {k: v for k, v in result["errors"].items() if v}
        if errors:
            raise BenchError(
                f"wrk against {name} ({tag}, {connections} connections) saw errors {errors}; "
                f"the numbers would not be valid. Last lines of {server.log_path}:\n"
                f"{log_tail(server.log_path)}"
            )
        if server.process.poll() is not None:
            raise BenchError(
                f"{name} exited during the {tag} run. Last lines of "
                f"{server.log_path}:\n{log_tail(server.log_path)}"
            )
        result["requests_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
        result["connections"] = connections
        # How much of its CPU the server and wrk used; how long other processes ran on the
        # server's CPU, and how long wrk waited for its CPU: both near 0 for clean numbers.
        result["server_cpu_share"] = server_cpu / wall
        result["wrk_cpu_share"] = wrk_cpu / wall
        result["server_cpu_taken_by_others"] = others_on_server_cpu / wall
        result["wrk_waited_share"] = wrk_waited / wall
        result["disturbance"] = max(others_on_server_cpu, wrk_waited) / wall
        return result

    def measure(self, server: Running, tag: str) -> dict[str, Any]:
        a, w = self.args, self.workload
        self.wrk(server, w.single_body, 16, a.warmup, f"{tag}-warmup")
        c1 = self.wrk(server, w.single_body, 1, a.duration, f"{tag}-c1")
        c16 = self.wrk(server, w.single_body, 16, a.duration, f"{tag}-c16")
        self.wrk(server, w.batch_body, BATCH_CONNECTIONS, a.warmup, f"{tag}-batch-warmup")
        batch = self.wrk(server, w.batch_body, BATCH_CONNECTIONS, a.duration, f"{tag}-batch")
        batch["rows_per_s"] = batch["requests_per_s"] * BATCH_ROWS
        return {"c1": c1, "c16": c16, "batch": batch}

    def load(self) -> dict[str, Any]:
        """Every server up at once (idle ones cost next to nothing), measured in rounds.

        Other work on this machine comes and goes; rounds spread it over all servers, and
        `pick` chooses which round of each run is reported (all are kept in the JSON).
        """
        a = self.args
        print(
            f"\nLoad: wrk -t1, {a.duration:g} s per run after {a.warmup:g} s warm-up, "
            f"{a.rounds} round(s); servers on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}; "
            f"batch: {BATCH_ROWS} rows per request, {BATCH_CONNECTIONS} connections"
        )
        servers: dict[str, Running] = {}
        rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in self.specs}
        try:
            for key in self.specs:
                servers[key] = self.launch(key)
            for server in servers.values():
                wait_ready(server)
            for number in range(1, a.rounds + 1):
                for key, server in servers.items():
                    runs = self.measure(server, f"round{number}")
                    rounds[key].append(runs)
                    c1, c16, batch = runs["c1"], runs["c16"], runs["batch"]
                    print(
                        f"  round {number}  {LABELS[key]:<16} c=1 {c1['requests_per_s']:>7,.0f}"
                        f" req/s  c=16 {c16['requests_per_s']:>7,.0f} req/s  batch "
                        f"{batch['rows_per_s']:>10,.0f} rows/s  (disturbed: "
                        + "/".join(f"{r['disturbance']:.0%}" for r in (c1, c16, batch))
                        + ")",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                self.processes.stop(server)
        return {
            key: {**{run: pick([r[run] for r in measured]) for run in RUNS}, "rounds": measured}
            for key, measured in rounds.items()
        }


def pick(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run to report: the median by throughput of the undisturbed runs, else the least
    disturbed one. Its latencies are reported with it, so every number comes from one run."""
    clean = sorted(
        (r for r in runs if r["disturbance"] <= DISTURBED), key=lambda r: r["requests_per_s"]
    )
    if clean:
        return clean[(len(clean) - 1) // 2]
    return min(runs, key=lambda r: r["disturbance"])


# --- report ---------------------------------------------------------------------------------

METRICS = (
    # key, heading, unit, getter
    ("c1_rps", "c=1 req/s", "", lambda r: r["load"]["c1"]["requests_per_s"]),
    ("c1_p50", "c=1 p50", "ms", lambda r: r["load"]["c1"]["latency_us"]["p50"] / 1000),
    ("c1_p99", "c=1 p99", "ms", lambda r: r["load"]["c1"]["latency_us"]["p99"] / 1000),
    ("c16_rps", "c=16 req/s", "", lambda r: r["load"]["c16"]["requests_per_s"]),
    ("c16_p50", "c=16 p50", "ms", lambda r: r["load"]["c16"]["latency_us"]["p50"] / 1000),
    ("c16_p99", "c=16 p99", "ms", lambda r: r["load"]["c16"]["latency_us"]["p99"] / 1000),
    ("batch_rows", "batch rows/s", "", lambda r: r["load"]["batch"]["rows_per_s"]),
    ("ready_s", "ready s", "", lambda r: r["startup"]["median_s"]),
)


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}"


def summarize(servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values = {key: {m[0]: m[3](res) for m in METRICS} for key, res in servers.items()}
    base = values.get("mlserver")
    ratios = (
        {key: {name: v / base[name] for name, v in vals.items()} for key, vals in values.items()}
        if base
        else {}
    )
    ours, hello = values.get("ours"), values.get("hello")
    of_floor = (
        {name: ours[name] / hello[name] for name in ("c1_rps", "c16_rps")}
        if (ours and hello)
        else {}
    )
    goals = []
    if ours and base:
        for name, label in (("c1_rps", "c=1"), ("c16_rps", "c=16")):
            ratio = ours[name] / base[name]
            goals.append(
                {
                    "goal": f"{label} req/s >= {GOAL_SPEEDUP:g}x MLServer",
                    "value": f"{ratio:.2f}x",
                    "pass": ratio >= GOAL_SPEEDUP,
                }
            )
    if of_floor:
        for name, label in (("c1_rps", "c=1"), ("c16_rps", "c=16")):
            ratio = of_floor[name]
            goals.append(
                {
                    "goal": f"{label} req/s >= {GOAL_OF_FLOOR:g}x hello-world",
                    "value": f"{ratio:.2f}x",
                    "pass": ratio >= GOAL_OF_FLOOR,
                }
            )
    if ours and base:
        ratio = ours["c16_p99"] / base["c16_p99"]
        goals.append(
            {
                "goal": f"c=16 p99 <= {GOAL_P99_FRACTION:g}x MLServer's",
                "value": f"{ours['c16_p99']:.2f} ms vs {base['c16_p99']:.2f} ms ({ratio:.3f}x)",
                "pass": ratio <= GOAL_P99_FRACTION,
            }
        )
    if ours:
        goals.append(
            {
                "goal": f"ready <= {GOAL_READY_SECONDS:g} s from process start",
                "value": f"{ours['ready_s']:.3f} s",
                "pass": ours["ready_s"] <= GOAL_READY_SECONDS,
            }
        )
    interference = max(servers[key]["load"][run]["disturbance"] for key in servers for run in RUNS)
    return {
        "values": values,
        "disturbance": {
            key: [res["load"][run]["disturbance"] for run in RUNS] for key, res in servers.items()
        },
        "disturbance_max": interference,
        "ratio_to_mlserver": ratios,
        "ours_to_hello": of_floor,
        "goals": goals,
    }


def print_report(summary: dict[str, Any], keys: list[str]) -> None:
    name_width = 16
    widths = [max(len(m[1]), 11) for m in METRICS]
    header = f"{'server':<{name_width}}" + "".join(
        f"  {m[1]:>{w}}" for m, w in zip(METRICS, widths, strict=True)
    )
    print("\n" + header)
    print("-" * len(header))
    for key in keys:
        vals = summary["values"][key]
        print(
            f"{LABELS[key]:<{name_width}}"
            + "".join(
                f"  {_fmt(vals[m[0]], m[2]):>{w}}" for m, w in zip(METRICS, widths, strict=True)
            )
        )
    ratios = summary["ratio_to_mlserver"]
    if ratios:
        print("\nratio to MLServer (throughput: higher is better; latency and ready: lower)")
        print("-" * len(header))
        for key in keys:
            print(
                f"{LABELS[key]:<{name_width}}"
                + "".join(
                    f"  {ratios[key][m[0]]:>{w - 1}.2f}x"
                    for m, w in zip(METRICS, widths, strict=True)
                )
            )
    if summary["ours_to_hello"]:
        floor = summary["ours_to_hello"]
        print(
            f"\nnepse-predictor / hello (floor): c=1 {floor['c1_rps']:.2f}x, "
            f"c=16 {floor['c16_rps']:.2f}x"
        )
    print(
        f"\nDisturbance by other processes in the reported runs (the larger of: their time on "
        f"CPU {SERVER_CPU}, wrk's wait for CPU {CLIENT_CPU}; share of the run, c=1/c=16/batch):"
    )
    for key in keys:
        print(
            f"  {LABELS[key]:<{name_width}}"
            + "/".join(f"{d:.0%}" for d in summary["disturbance"][key])
        )
    if summary["disturbance_max"] > DISTURBED:
        print(
            "  Some numbers are disturbed by other work on this machine: rerun when it is quiet "
            "(more --rounds help)."
        )
    if summary["goals"]:
        print("\nGoals")
        for goal in summary["goals"]:
            print(f"  {'PASS' if goal['pass'] else 'FAIL'}  {goal['goal']:<38} {goal['value']}")


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Serve one trained model four ways and compare them under wrk.",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per measured wrk run (default 10)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of warm-up before the single-row and batch runs (default 2)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="measurement rounds over all servers; each run reports the median of its "
        "undisturbed rounds (default 2)",
    )
    parser.add_argument(
        "--starts",
        type=int,
        default=3,
        help="process starts per server for the ready time (default 3)",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_ORDER),
        help=f"comma-separated subset of {','.join(SERVER_ORDER)} (default all)",
    )
    parser.add_argument(
        "--mlserver-workers",
        type=int,
        default=0,
        help="MLServer parallel_workers; 0 runs inference in the server process, "
        "the faster choice on one CPU (default 0)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=-10 if os.geteuid() == 0 else 0,
        help="run the servers and wrk at this niceness, so other work on a shared machine "
        "disturbs the measurement less; negative values need root (default -10 as root, "
        "else 0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_FILE,
        help=f"JSON results file (default {RESULTS_FILE.relative_to(REPO)})",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 3 when a goal fails"
    )
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SERVER_ORDER]
    if unknown or not keys:
        parser.error(
            f"--servers {args.servers!r}: unknown {unknown or 'empty list'}; "
            f"choose from {','.join(SERVER_ORDER)}"
        )
    args.keys = [k for k in SERVER_ORDER if k in keys]
    if args.duration <= 0 or args.warmup <= 0:
        parser.error("--duration and --warmup must be positive")
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: need at least 1")
    if args.starts < 1:
        parser.error(f"--starts {args.starts}: need at least 1")
    if not -20 <= args.nice <= 19:
        parser.error(f"--nice {args.nice}: must be between -20 and 19")
    if args.nice < 0 and os.geteuid() != 0:
        parser.error(f"--nice {args.nice}: a negative niceness needs root")
    if args.mlserver_workers < 0:
        parser.error(f"--mlserver-workers {args.mlserver_workers}: must be 0 or more")
    return args


def _raise_on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_signal)
    cpus = sorted(os.sched_getaffinity(0))
    if SERVER_CPU not in cpus or CLIENT_CPU not in cpus:
        print(
            f"bench: needs CPUs {SERVER_CPU} and {CLIENT_CPU} (this process may use {cpus})",
            file=sys.stderr,
        )
        return 1
    if not shutil.which("taskset"):
        print("bench: taskset is missing (Debian package util-linux)", file=sys.stderr)
        return 1

    results: dict[str, Any] = {
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        },
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "starts": args.starts,
            "rounds": args.rounds,
            "server_cpu": SERVER_CPU,
            "client_cpu": CLIENT_CPU,
            "batch_rows": BATCH_ROWS,
            "batch_connections": BATCH_CONNECTIONS,
            "mlserver_parallel_workers": args.mlserver_workers,
            "nice": args.nice,
            "servers": args.keys,
        },
    }
    work = Path(tempfile.mkdtemp(prefix="nepse-bench-"))
    (work / "logs").mkdir()
    processes = Processes(work / "logs", nice=args.nice)
    status = 0
    try:
        wrk = ensure_wrk()
        mlserver = ensure_mlserver_venv() if "mlserver" in args.keys else None
        results["versions"] = {
            "wrk": command_output([wrk, "--version"]),
            "service_venv": package_versions(
                (
                    "fastapi",
                    "starlette",
                    "uvicorn",
                    "uvloop",
                    "httptools",
                    "onnxruntime",
                    "xgboost-cpu",
                    "scikit-learn",
                    "pydantic",
                    "orjson",
                )
            ),
        }
        if mlserver is not None:
            results["versions"]["mlserver_venv"] = command_output(
                [
                    str(MLSERVER_VENV / "bin" / "python"),
                    "-c",
                    "from importlib.metadata import version as v; print(' '.join(f'{n}=={v(n)}' "
                    "for n in ('mlserver', 'mlserver-xgboost', 'xgboost', 'fastapi', 'uvicorn', "
                    "'uvloop', 'httptools')))",
                ]
            )
        workload = prepare_workload(work)
        results["model"] = {
            "version": workload.metadata["version"],
            "features": len(workload.metadata["features"]),
            "single_body_bytes": workload.single_body.stat().st_size,
            "batch_body_bytes": workload.batch_body.stat().st_size,
        }
        # From here on this process only polls and waits: keep it off the server's CPU.
        os.sched_setaffinity(0, {CLIENT_CPU})
        specs = server_specs(work, workload, mlserver)
        specs = {key: specs[key] for key in args.keys}
        print(
            f"request bodies: 1 row {results['model']['single_body_bytes']} bytes, "
            f"{BATCH_ROWS} rows {results['model']['batch_body_bytes']:,} bytes; logs in "
            f"{work / 'logs'}"
        )

        bench = Bench(processes, specs, args, workload, work)
        results["parity"] = bench.parity()
        startup = bench.startup()
        load = bench.load()
        servers = {key: {"startup": startup[key], "load": load[key]} for key in args.keys}
        results["servers"] = servers
        summary = summarize(servers)
        results.update(summary)
        print_report(summary, args.keys)
        if args.strict and any(not g["pass"] for g in summary["goals"]):
            status = 3
    except BenchError as exc:
        results["error"] = str(exc)
        print(f"\nbench: error: {exc}", file=sys.stderr)
        status = 1
    except Exception as exc:  # a bug or an unexpected answer: say so, keep the logs
        results["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        status = 1
    except KeyboardInterrupt:
        results["error"] = "interrupted"
        print("\nbench: interrupted", file=sys.stderr)
        status = 130
    finally:
        processes.stop_all()
        write_results(args.out, results)
        print(f"\nresults: {args.out}")
        if status == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work} (logs in {work / 'logs'})", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
