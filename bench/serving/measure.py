"""The measurements: parity of the answers, start-up time, and wrk load in rounds."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.accounting import (
    children_cpu_seconds,
    cpu_busy_seconds,
    group_cpu_seconds,
    waited_seconds,
)
from serving.processes import (
    Processes,
    Running,
    ServerSpec,
    free_ports,
    http_call,
    log_tail,
    nice_prefix,
    wait_ready,
)
from serving.servers import write_mlserver_settings
from serving.settings import (
    BATCH_CONNECTIONS,
    BATCH_ROWS,
    CLIENT_CPU,
    DISTURBED,
    INFER_PATH,
    LABELS,
    PARITY_ROWS,
    PARITY_TOLERANCE,
    READY_PATH,
    READY_POLL_SECONDS,
    RUNS,
    SERVER_CPU,
    WRK_SCRIPT,
    BenchError,
)
from serving.workload import Workload, oip_body


@dataclass
class Bench:
    """The servers to compare (``specs``), what to send them, and where their logs go."""

    processes: Processes
    specs: dict[str, ServerSpec]
    args: Any
    workload: Workload
    work: Path

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
                    with paused([s for s in servers.values() if s is not server]):
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


@contextlib.contextmanager
def paused(others: list[Running]) -> Iterator[None]:
    """The other servers stopped (SIGSTOP) while one is measured: they share its CPU, and an
    idle server's timers and housekeeping threads would otherwise land in its tail latency."""
    for server in others:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for server in others:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGCONT)


def pick(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run to report: the median by throughput of the undisturbed runs, else the least
    disturbed one. Its latencies are reported with it, so every number comes from one run."""
    clean = sorted(
        (r for r in runs if r["disturbance"] <= DISTURBED), key=lambda r: r["requests_per_s"]
    )
    if clean:
        return clean[(len(clean) - 1) // 2]
    return min(runs, key=lambda r: r["disturbance"])
