"""The physical reference: what the work of a request costs in process, with no server around
it, on the benchmark's rows and its server CPU. The model alone (the service's compiled trees,
its default backend; ONNX Runtime, its fallback; XGBoost's own predictor, as MLServer runs it)
and the service's parsing of the very bodies wrk sends, each as the best mean of several
repeats."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from serving.settings import SERVER_CPU
from serving.workload import Workload

REPEATS = 5
SECONDS_PER_REPEAT = 0.4


def _seconds_per_call(call: Callable[[], Any]) -> float:
    call()
    count = 1
    started = time.perf_counter()
    while time.perf_counter() - started < SECONDS_PER_REPEAT / 10:
        call()
        count += 1
    per_repeat = max(1, int(count * 10 / REPEATS))
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(per_repeat):
            call()
        best = min(best, (time.perf_counter() - started) / per_repeat)
    return best


def measure_reference(workload: Workload) -> dict[str, Any]:
    import xgboost

    from nepse_predictor.model import load_model
    from nepse_predictor.oip_request import parse_infer

    trees = load_model(workload.model_dir, "trees").predict_proba
    onnx = load_model(workload.model_dir, "onnx").predict_proba
    booster = xgboost.Booster(model_file=str(workload.model_dir / "model.ubj"))
    booster.set_param({"nthread": 1})

    def xgb(rows):
        return booster.inplace_predict(rows, validate_features=False)

    single, batch = workload.single_rows, workload.batch_rows
    single_body, batch_body = workload.single_body.read_bytes(), workload.batch_body.read_bytes()
    rows = len(batch)
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SERVER_CPU})
    try:
        seconds = {
            "trees_single": _seconds_per_call(lambda: trees(single)),
            "trees_batch": _seconds_per_call(lambda: trees(batch)),
            "onnx_single": _seconds_per_call(lambda: onnx(single)),
            "onnx_batch": _seconds_per_call(lambda: onnx(batch)),
            "xgboost_single": _seconds_per_call(lambda: xgb(single)),
            "xgboost_batch": _seconds_per_call(lambda: xgb(batch)),
            "parse_single": _seconds_per_call(lambda: parse_infer(single_body, rows)),
            "parse_batch": _seconds_per_call(lambda: parse_infer(batch_body, rows)),
        }
    finally:
        os.sched_setaffinity(0, previous)
    return {
        "seconds_per_call": seconds,
        "batch_rows": rows,
        "rows_per_s": {
            name: (rows if name.endswith("batch") else 1) / value for name, value in seconds.items()
        },
    }


def print_reference(reference: dict[str, Any]) -> None:
    seconds, rows = reference["seconds_per_call"], reference["batch_rows"]
    print(f"\nPhysical reference: in process on CPU {SERVER_CPU}, no server (best of {REPEATS})")
    for label, key in (
        ("model, compiled trees", "trees"),
        ("model, ONNX Runtime", "onnx"),
        ("model, XGBoost", "xgboost"),
        ("parse the body", "parse"),
    ):
        one, many = seconds[f"{key}_single"], seconds[f"{key}_batch"]
        print(
            f"  {label:<20} 1 row {one * 1e6:7.1f} us   {rows:,} rows {many * 1e3:6.2f} ms "
            f"= {rows / many:>10,.0f} rows/s"
        )
