"""Edge inference: the ONNX model with nothing but onnxruntime and numpy.

For a trader's workstation or a small board (the chapter's edge path): no web framework, no
XGBoost, no scikit-learn. `python -m nepse_predictor.edge MODEL_DIR` prints how long the imports
and the model load took and how much memory the process holds.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

_started = time.perf_counter()
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

from nepse_predictor.errors import ModelIntegrityError  # noqa: E402
from nepse_predictor.onnx_export import p_up_of  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _started


class EdgePredictor:
    """Probability of an up session for feature rows, from a verified model.onnx."""

    def __init__(self, model_dir: str | Path) -> None:
        model_dir = Path(model_dir)
        try:
            manifest: dict[str, str] = {}
            for line in (model_dir / "checksums.sha256").read_text("ascii").splitlines():
                digest, name = line.split("  ", 1)
                manifest[name] = digest
            onnx_bytes = (model_dir / "model.onnx").read_bytes()
            metadata_bytes = (model_dir / "metadata.json").read_bytes()
        except (OSError, ValueError) as exc:
            raise ModelIntegrityError(
                f"{model_dir}: not a readable model directory: {exc}"
            ) from None
        for name, content in (("model.onnx", onnx_bytes), ("metadata.json", metadata_bytes)):
            if hashlib.sha256(content).hexdigest() != manifest.get(name):
                raise ModelIntegrityError(
                    f"{model_dir / name}: checksum does not match the manifest"
                )
        self.metadata = json.loads(metadata_bytes)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            onnx_bytes, options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[-1].name

    @property
    def features(self) -> list[str]:
        return list(self.metadata["features"])

    def predict(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, len(self.features))
        [output] = self._session.run([self._output], {self._input: rows})
        return p_up_of(output).astype(np.float64)


def resident_memory_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(model_dir: str | Path) -> dict[str, float | str]:
    started = time.perf_counter()
    predictor = EdgePredictor(model_dir)
    load_seconds = time.perf_counter() - started
    row = np.zeros((1, len(predictor.features)), dtype=np.float32)
    started = time.perf_counter()
    for _ in range(1000):
        predictor.predict(row)
    per_prediction = (time.perf_counter() - started) / 1000
    return {
        "model_version": predictor.metadata["version"],
        "import_seconds": round(IMPORT_SECONDS, 4),
        "load_seconds": round(load_seconds, 4),
        "single_row_microseconds": round(per_prediction * 1e6, 1),
        "peak_rss_mib": round(resident_memory_mib(), 1),
        "loaded_modules": sorted(
            name for name in ("fastapi", "xgboost", "sklearn", "pydantic") if name in sys.modules
        ),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m nepse_predictor.edge MODEL_DIR", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(report(sys.argv[1]), indent=2))
