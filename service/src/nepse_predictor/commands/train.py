"""`nepse-predictor train`: fit the model and write a versioned model directory."""

from __future__ import annotations

import argparse
import json


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train on a price-history CSV (default: the bundled synthetic sample) and "
        "write <out>/<version>/ with the XGBoost model, its ONNX export, metadata and checksums."
    )
    parser.add_argument("--data", help="OHLCV CSV (Date, Open, High, Low, Close, Volume[, Symbol])")
    parser.add_argument("--out", default="models", help="root folder for model versions")
    parser.add_argument("--version", help="version name (default: <date>-<recipe hash>)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-joblib", action="store_true", help="do not write model.joblib")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nepse_predictor.training import train

    result = train(args.data, args.out, args.version, args.seed, with_joblib=not args.no_joblib)
    metrics = result.metadata["metrics"]
    summary = {
        "model_dir": str(result.model_dir),
        "version": result.metadata["version"],
        "test_auc": round(metrics["model"]["auc"], 4),
        "baseline_auc": round(metrics["baseline"]["auc"], 4),
        "test_accuracy": round(metrics["model"]["accuracy"], 4),
        "baseline_accuracy": round(metrics["baseline"]["accuracy"], 4),
        "test_log_loss": round(metrics["model"]["log_loss"], 4),
        "baseline_log_loss": round(metrics["baseline"]["log_loss"], 4),
        "onnx_max_abs_diff": result.metadata["onnx_parity"]["max_abs_diff"],
    }
    print(json.dumps(summary, indent=2))
    return 0
