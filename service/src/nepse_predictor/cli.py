"""The `nepse-predictor` command line: one sub-command per module in `commands/`."""

from __future__ import annotations

import argparse
import importlib
import sys

from nepse_predictor.errors import UserError

# Sub-command -> (module under nepse_predictor.commands, its one-line help, shown both in the
# command list and atop the command's own help). Each module defines `register(parser)`, which
# adds its options (and a longer description where it has one). Only the module of the command
# being run is imported, so `serve` never pays for the training libraries.
COMMANDS = {
    "train": ("train", "train the model and write a versioned model directory"),
    "sample-data": ("sample_data", "write synthetic NEPSE-like OHLCV data"),
    "fetch-model": ("fetch_model", "download a model directory, verifying every checksum"),
    "verify-model": ("verify_model", "verify a model directory and print its metadata"),
    "serve": ("serve", "serve the model over HTTP (FastAPI + uvicorn)"),
    "shadow-report": ("shadow_report", "compare two tracks' logged predictions"),
    "predictions": ("predictions", "list, export, count and void-mark logged predictions"),
    "edge-report": ("edge_report", "measure the onnxruntime-only edge predictor"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nepse-predictor",
        description="Train, verify, fetch and serve the NEPSE next-day direction model.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, (module_name, summary) in COMMANDS.items():
        command = subparsers.add_parser(
            name,
            help=summary,
            description=summary[:1].upper() + summary[1:] + ".",
        )
        if name == wanted:
            importlib.import_module(f"nepse_predictor.commands.{module_name}").register(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"nepse-predictor {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
