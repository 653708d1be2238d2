"""`nepse-predictor serve`: run the HTTP inference server."""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path

from nepse_predictor.errors import UserError

DEFAULT_MODELS_ROOT = Path("models")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve predictions over HTTP (FastAPI + uvicorn)",
        description=(
            "Serve the model over HTTP: /v1/predict, /v1/predict/bars, the Open Inference "
            "Protocol v2 routes, /health, /ready and /metrics. Settings come from NEPSE_* "
            "environment variables (see nepse_predictor.config); options here override them."
        ),
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="a model version directory, or a folder of versions (the newest verified one is "
        "served); default: $NEPSE_MODEL_DIR, $MODEL_PATH, else the newest under --models-root",
    )
    parser.add_argument(
        "--models-root",
        type=Path,
        default=DEFAULT_MODELS_ROOT,
        help="folder of model versions used when no model directory is given (default ./models)",
    )
    parser.add_argument("--host", help="listen address (default $NEPSE_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default $NEPSE_PORT or 8000)")
    parser.add_argument(
        "--train-if-missing",
        action="store_true",
        help="train a model on the bundled synthetic sample first when there is none",
    )
    parser.set_defaults(handler=run)


def _resolve_model_dir(
    requested: Path | None, train_if_missing: bool, models_root: Path = DEFAULT_MODELS_ROOT
) -> Path | None:
    from nepse_predictor.artifacts import MANIFEST, find_latest_model

    if requested is not None and requested.is_dir() and not (requested / MANIFEST).exists():
        latest = find_latest_model(requested)
        if latest is not None:
            return latest
    if requested is None:
        latest = find_latest_model(models_root)
        if latest is not None or not train_if_missing:
            return latest
    if requested is not None and (requested.exists() or not train_if_missing):
        return requested

    from nepse_predictor.training import train

    if requested is None:
        result = train(out_root=models_root)
    elif requested.exists():
        result = train(out_root=requested)
    else:
        result = train(out_root=requested.parent, version=requested.name)
    print(f"trained {result.model_dir}", flush=True)
    return result.model_dir


def run(args: argparse.Namespace) -> int:
    # Start-up allocates a great many objects that live for the whole process; collecting
    # garbage while importing only costs time (about 8% of start-up). The lifespan turns the
    # collector back on, with everything from start-up frozen out of its way.
    gc.disable()
    from pydantic import ValidationError

    from nepse_predictor.config import Settings, describe_settings_error

    try:
        settings = Settings()
    except ValidationError as exc:
        raise UserError(f"invalid setting: {describe_settings_error(exc)}") from None
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise UserError(f"--port {args.port}: must be between 0 and 65535")
        overrides["port"] = args.port
    requested = args.model_dir
    if requested is None and settings.model_dir is not None:
        requested = settings.model_dir
    from_env = args.model_dir is None and settings.model_dir is not None
    if from_env and not args.train_if_missing:
        model_dir = settings.model_dir
    else:
        model_dir = _resolve_model_dir(requested, args.train_if_missing, args.models_root)
    overrides["model_dir"] = model_dir
    settings = settings.model_copy(update=overrides)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")

    from nepse_predictor.server import serve

    return serve(settings)
