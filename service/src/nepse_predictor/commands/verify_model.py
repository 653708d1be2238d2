"""`nepse-predictor verify-model`: check a model directory against its checksums."""

from __future__ import annotations

import argparse
import json


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.add_argument(
        "--print-manifest-sha256",
        action="store_true",
        help="print only the sha256 of checksums.sha256 (the value the chart pins)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nepse_predictor import artifacts

    metadata = artifacts.verify_model_dir(args.model_dir)
    manifest_sha256 = artifacts.sha256_of(Path(args.model_dir) / artifacts.MANIFEST)
    if args.print_manifest_sha256:
        print(manifest_sha256)
        return 0
    summary = {
        "version": metadata["version"],
        "created": metadata.get("created"),
        "features": metadata["features"],
        "manifest_sha256": manifest_sha256,
        "metrics": metadata.get("metrics", {}).get("model"),
    }
    print(json.dumps(summary, indent=2))
    return 0
