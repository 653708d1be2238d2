"""`nepse-predictor fetch-model`: download and verify a model directory (init containers)."""

from __future__ import annotations

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Fetch <url>/checksums.sha256 and every file it lists into --dest; refuse "
        "anything that does not match. --sha256 pins the manifest itself."
    )
    parser.add_argument("--url", required=True, help="model directory URL (http, https, file)")
    parser.add_argument("--dest", required=True, help="directory to create")
    parser.add_argument("--sha256", help="expected sha256 of checksums.sha256")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nepse_predictor.fetch import fetch_model

    path = fetch_model(args.url, args.dest, args.sha256, timeout=args.timeout)
    print(f"verified model in {path}")
    return 0
