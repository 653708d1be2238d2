"""`nepse-predictor sample-data`: write the synthetic NEPSE-like price history as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from nepse_predictor.errors import UserError


def register(parser: argparse.ArgumentParser) -> None:
    from nepse_predictor.sample_data import LISTED_SYMBOLS, SAMPLE_DAYS, SAMPLE_SEED

    parser.description = (
        "Deterministic synthetic data (not real market data) for trying things out."
    )
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--symbols", nargs="+", choices=sorted(LISTED_SYMBOLS), metavar="SYMBOL")
    parser.add_argument("--days", type=int, default=SAMPLE_DAYS, help="sessions per symbol")
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nepse_predictor.sample_data import generate, write_csv

    if args.days < 1:
        raise UserError(f"--days {args.days}: must be at least 1")
    path = write_csv(generate(args.symbols, args.days, args.seed), Path(args.out))
    print(path)
    return 0
