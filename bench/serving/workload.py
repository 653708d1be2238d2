"""The workload: one model trained for the run, and the request bodies built from its real
held-out feature rows."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.settings import BATCH_ROWS, PARITY_ROWS, BenchError


@dataclass
class Workload:
    model_dir: Path
    metadata: dict[str, Any]
    single_body: Path
    batch_body: Path
    single_rows: np.ndarray
    batch_rows: np.ndarray
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
        result.model_dir,
        result.metadata,
        single_body,
        batch_body,
        rows[:1],
        batch,
        parity_rows,
        reference,
    )
