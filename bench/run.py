"""Serving benchmark: the same trained model served three ways on this machine, beside two
floors that serve no model, in one run.

    .venv/bin/python bench/run.py            (make bench; --help for the options)

The servers, each a single process pinned to CPU 0 (wrk is pinned to CPU 1; all on 127.0.0.1):

  ours      `nepse-predictor serve` (its default backend, the compiled trees),
            NEPSE_ACCESS_LOG=false
  naive     bench/apps/naive_joblib_app.py: the chapter's FastAPI + joblib + predict_proba
  mlserver  Seldon MLServer + mlserver-xgboost on the model's model.ubj, in its own virtual
            environment (.tools/bench/mlserver-venv, from bench/requirements-mlserver.txt),
            parallel_workers 0 by default: inference in the server process, its fastest
            setting on one CPU (the default of 1 adds a hop to a worker process)
  hello     bench/apps/hello_app.py: FastAPI reading the body and answering a constant, the
            framework floor
  loop      bench/apps/loop_floor.py: uvloop and httptools answering the same constant, no
            framework: the host's floor, whose c=16 p99 is what the host itself adds to any
            server's tail (printed beside the p99 goal)

None of them writes an access log. The model is trained once into a temporary folder. Every
server gets the same bytes from wrk (bench/wrk/oip_post.lua) on
POST /v2/models/nepse-predictor/infer: one FP32 [N, 10] tensor of real held-out feature rows
and no `outputs` member, so each answers its default output, which is P(up) for all three model
servers. Steps:

  1. parity: each model server's P(up) for the same 16 rows must match XGBoost's to 1e-5;
     nothing is measured otherwise
  2. start-up: spawn -> first 200 from GET /v2/models/nepse-predictor/ready, polled every 5 ms,
     median of --starts starts (round robin over the servers); every Python server reads
     compiled bytecode, as the image does
  3. load: all servers up, measured in --rounds rounds, each while the others are stopped
     (SIGSTOP, so nothing of theirs runs on the server CPU); each round gives every server a
     warm-up, then 1 and 16 connections with one row per request, then 1,000 rows per request
     (4 connections); reported per run: the median (lower middle) by throughput of the rounds
     that other processes did not disturb (their time on CPU 0 and wrk's wait for CPU 1 both
     under 5% of the run), else the least disturbed round. Servers and wrk run at nice -10
     when started as root (--nice), to keep other work on a shared machine out of the way.

  4. physical reference: in process on the server CPU, no server: the model alone (the
     service's compiled trees and ONNX Runtime, XGBoost's predictor as MLServer runs it) and
     the service's parsing of the same bodies (bench/serving/reference.py)

The table shows each number and its ratio to MLServer, nepse-predictor's ratio to the
hello-world floor and to its model alone, and the goals with PASS/FAIL (bench/serving/
settings.py): single-row req/s >= 5x MLServer's at c=1 and c=16 and >= 0.9x hello-world's,
c=16 p99 <= 0.1x MLServer's, 1,000-row batch rows/s >= 2x MLServer's, start-to-ready <= 1.2x
hello-world's. bench/results/latest.json keeps it all. The modules of bench/serving/: settings
(constants, goals), provision (wrk, the MLServer venv), workload, servers, processes,
accounting (CPU use), measure (parity, start-up, load), reference, report.

Exit status: 0 when the run completed (goals may still FAIL; --strict turns that into 3), 1 when
it could not measure (a server did not come up, answers differ, wrk failed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serving.measure import Bench
from serving.processes import Processes
from serving.provision import (
    command_output,
    compile_sources,
    ensure_mlserver_venv,
    ensure_wrk,
    package_versions,
)
from serving.reference import measure_reference, print_reference
from serving.report import print_report, summarize, write_results
from serving.servers import server_specs
from serving.settings import (
    BATCH_CONNECTIONS,
    BATCH_ROWS,
    CLIENT_CPU,
    MLSERVER_VENV,
    REPO,
    RESULTS_FILE,
    SERVER_CPU,
    SERVER_ORDER,
    BenchError,
)
from serving.workload import prepare_workload


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Serve one trained model three ways beside two floors; compare them under wrk.",
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
        compile_sources()
        workload = prepare_workload(work)
        results["model"] = {
            "version": workload.metadata["version"],
            "features": len(workload.metadata["features"]),
            "single_body_bytes": workload.single_body.stat().st_size,
            "batch_body_bytes": workload.batch_body.stat().st_size,
        }
        reference = measure_reference(workload)
        results["reference"] = reference
        print_reference(reference)
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
        summary = summarize(servers, reference)
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
