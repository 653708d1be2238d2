"""Training the next-session direction classifier and writing a versioned model directory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np

from nepse_predictor import artifacts
from nepse_predictor.data import load_ohlcv
from nepse_predictor.dataset import Split, time_split
from nepse_predictor.errors import UserError
from nepse_predictor.features import FEATURE_NAMES, MIN_BARS
from nepse_predictor.onnx_export import export_onnx, onnx_parity
from nepse_predictor.sample_data import BUNDLED_SAMPLE

PARITY_TOLERANCE = 1e-5
HYPERPARAMETERS: dict[str, Any] = {
    "n_estimators": 150,
    "max_depth": 3,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "tree_method": "hist",
    "eval_metric": "logloss",
}
LIBRARIES = ("xgboost-cpu", "scikit-learn", "numpy", "onnx", "onnxmltools", "onnxruntime")


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    metadata: dict[str, Any]


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            continue
    return versions


def _scores(y_true: np.ndarray, p_up: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    p_up = np.clip(p_up, 1e-7, 1 - 1e-7)
    return {
        "auc": float(roc_auc_score(y_true, p_up)) if len(np.unique(y_true)) > 1 else 0.5,
        "accuracy": float(accuracy_score(y_true, p_up >= 0.5)),
        "log_loss": float(log_loss(y_true, p_up, labels=[0, 1])),
    }


def evaluate(split: Split, p_up: np.ndarray) -> dict[str, Any]:
    """Model scores on the test period next to a naive baseline.

    The baseline always predicts the training period's share of up sessions: it has the
    majority-class accuracy and an AUC of 0.5, the bar any useful model must clear.
    """
    base_rate = float(split.y_train.mean())
    return {
        "model": _scores(split.y_test, p_up),
        "baseline": _scores(split.y_test, np.full(len(split.y_test), base_rate)),
        "rows": {"train": len(split.y_train), "test": len(split.y_test)},
        "train_end": split.train_end.isoformat(),
        "test_start": split.test_start.isoformat(),
        "up_share_train": base_rate,
    }


def model_version(data_sha256: str, seed: int, created: datetime) -> str:
    recipe = json.dumps(
        {"data": data_sha256, "seed": seed, "params": HYPERPARAMETERS, "features": FEATURE_NAMES},
        sort_keys=True,
    )
    return f"{created:%Y.%m.%d}-{hashlib.sha256(recipe.encode()).hexdigest()[:7]}"


def train(
    data_path: str | Path | None = None,
    out_root: str | Path = "models",
    version: str | None = None,
    seed: int = 42,
    with_joblib: bool = True,
) -> TrainResult:
    """Train on a CSV (the bundled synthetic sample by default); write out_root/<version>/."""
    import joblib
    from xgboost import XGBClassifier

    history = load_ohlcv(data_path or BUNDLED_SAMPLE)
    split = time_split(history)
    created = datetime.now(UTC).replace(microsecond=0)
    version = version or model_version(history.sha256, seed, created)
    if not version.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise UserError(f"--version {version!r}: use letters, digits, '.', '-' and '_' only")
    final_dir = Path(out_root) / version
    if final_dir.exists():
        raise UserError(f"{final_dir}: already exists; pick another --version or remove it")

    classifier = XGBClassifier(**HYPERPARAMETERS, random_state=seed, n_jobs=os.cpu_count() or 1)
    classifier.fit(split.x_train.astype(np.float32), split.y_train)
    x_test = split.x_test.astype(np.float32)
    p_up = classifier.predict_proba(x_test)[:, 1]

    Path(out_root).mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=out_root))
    try:
        classifier.get_booster().save_model(work_dir / artifacts.XGBOOST_FILE)
        onnx_outputs = export_onnx(classifier, len(FEATURE_NAMES), work_dir / artifacts.ONNX_FILE)
        parity = onnx_parity(work_dir / artifacts.ONNX_FILE, x_test, p_up)
        if parity["max_abs_diff"] > PARITY_TOLERANCE:
            raise UserError(
                f"ONNX export differs from XGBoost by {parity['max_abs_diff']:.2e} "
                f"(tolerance {PARITY_TOLERANCE:.0e}); the model was not written"
            )
        if with_joblib:
            joblib.dump(classifier, work_dir / artifacts.JOBLIB_FILE)
        metadata = {
            "name": artifacts.MODEL_NAME,
            "version": version,
            "created": created.isoformat(),
            "task": "next-session direction (1 = close rises)",
            "features": list(FEATURE_NAMES),
            "min_bars": MIN_BARS,
            "threshold": 0.5,
            "training_data": {
                "path": str(history.path),
                "sha256": history.sha256,
                "rows": history.rows,
                "symbols": [s.symbol for s in history.series],
                "synthetic": Path(history.path).resolve() == BUNDLED_SAMPLE.resolve(),
            },
            "training_data_sha256": history.sha256,
            "hyperparameters": {**HYPERPARAMETERS, "seed": seed},
            "metrics": evaluate(split, p_up),
            "onnx": onnx_outputs,
            "onnx_parity": {**parity, "tolerance": PARITY_TOLERANCE},
            "libraries": _library_versions(),
        }
        (work_dir / artifacts.METADATA).write_text(
            json.dumps(metadata, indent=2) + "\n", encoding="utf-8"
        )
        artifacts.write_manifest(work_dir)
        work_dir.chmod(0o755)  # mkdtemp makes it private; serving may run as another user
        work_dir.rename(final_dir)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    return TrainResult(model_dir=final_dir, metadata=metadata)
