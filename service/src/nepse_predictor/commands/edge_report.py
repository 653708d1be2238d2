"""`nepse-predictor edge-report`: import time, load time and memory of the ONNX-only path."""

from __future__ import annotations

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys

    # A fresh interpreter, so the numbers are not flattered by what this CLI already imported.
    return subprocess.call([sys.executable, "-m", "nepse_predictor.edge", args.model_dir])
