"""`nepse-predictor serve`: run the HTTP inference server."""

from __future__ import annotations

import argparse
import gc
import os
import textwrap
from pathlib import Path

from nepse_predictor.errors import UserError

DEFAULT_MODELS_ROOT = Path("models")


def register(parser: argparse.ArgumentParser) -> None:
    from nepse_predictor.config import settings_help

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = textwrap.fill(
        "Serve the model over HTTP: /v1/predict, /v1/predict/bars, the Open Inference "
        "Protocol v2 routes, /health, /ready and /metrics. Settings come from NEPSE_* "
        "environment variables (below); options here override them.",
        79,
    )
    parser.epilog = settings_help()
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="a model version directory, or a folder of versions (the newest one is served); "
        "default: $NEPSE_MODEL_DIR, $MODEL_PATH, else the newest under --models-root",
    )
    parser.add_argument(
        "--models-root",
        type=Path,
        help="folder of model versions used when no model directory is given (default "
        "$NEPSE_MODELS_ROOT or ./models)",
    )
    parser.add_argument(
        "--model-fallback",
        action="store_true",
        help="under a models root, serve the newest version that verifies when newer ones do "
        "not (each one passed over is logged and shown by /ready and /metrics); default: a "
        "newest version that fails its checksums leaves the server not ready",
    )
    parser.add_argument("--host", help="listen address (default $NEPSE_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default $NEPSE_PORT or 8000)")
    parser.add_argument(
        "--train-if-missing",
        action="store_true",
        help="train a model on the bundled synthetic sample first when there is none",
    )
    parser.set_defaults(handler=run)


def _resolve_model_source(
    requested: Path | None, train_if_missing: bool, models_root: Path = DEFAULT_MODELS_ROOT
) -> tuple[Path | None, Path | None]:
    """(model directory, models root) to serve from; at most one of them is set.

    A folder of versions is served as a models root: the server chooses the version and says
    which, and why, in its log, /ready and /metrics.
    """
    from nepse_predictor.artifacts import MANIFEST, model_versions

    folder_of_versions = (
        requested is not None and requested.is_dir() and not (requested / MANIFEST).exists()
    )
    if requested is not None and not folder_of_versions:
        if requested.exists() or not train_if_missing:
            return requested, None
        from nepse_predictor.training import train

        result = train(out_root=requested.parent, version=requested.name)
        print(f"trained {result.model_dir}", flush=True)
        return result.model_dir, None
    root = requested if requested is not None else models_root
    if train_if_missing and not model_versions(root):
        from nepse_predictor.training import train

        result = train(out_root=root)
        print(f"trained {result.model_dir}", flush=True)
    return None, root


# The settings that an option of the same name (--model-dir for model_dir) may give.
SETTINGS_WITH_OPTIONS = ("model_dir", "models_root", "host", "port", "model_fallback")


def option_of(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def run(args: argparse.Namespace) -> int:
    # Start-up allocates a great many objects that live for the whole process; collecting
    # garbage while importing only costs time (about 8% of start-up). The lifespan turns the
    # collector back on, with everything from start-up frozen out of its way.
    gc.disable()
    import msgspec

    from nepse_predictor.config import SettingsError, environment_settings

    given = environment_settings(os.environ)
    for name in SETTINGS_WITH_OPTIONS:
        value = getattr(args, name)
        if value is not None and value is not False:  # --model-fallback is a flag
            given.give(name, value, option_of(name))
    try:
        settings = given.validate()
    except SettingsError as exc:
        raise UserError(f"invalid setting: {exc}") from None
    # A model directory from the environment is served as it is; one on the command line, or
    # any source with --train-if-missing, may be a folder of versions or be trained first.
    named_by_option = given.origins.get("model_dir") == option_of("model_dir")
    model_dir: Path | None = settings.model_dir
    models_root: Path | None = None
    if model_dir is None or named_by_option or args.train_if_missing:
        model_dir, models_root = _resolve_model_source(
            settings.model_dir, args.train_if_missing, settings.models_root or DEFAULT_MODELS_ROOT
        )
    # Both are paths the resolution derived from checked settings.
    settings = msgspec.structs.replace(settings, model_dir=model_dir, models_root=models_root)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")

    from nepse_predictor.server import serve

    return serve(settings)
