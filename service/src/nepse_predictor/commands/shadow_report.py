"""`nepse-predictor shadow-report`: compare two tracks' logged predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from nepse_predictor.errors import UserError
from nepse_predictor.tracks import TRACKS


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Pair the predictions two release tracks logged to the Redis prediction stream by "
        "request id; write shadow-report.md, shadow-report.png and shadow-report.json."
    )
    parser.add_argument("--redis-url", required=True, help="e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--baseline", default="stable", choices=TRACKS, help="default stable")
    parser.add_argument("--candidate", default="shadow", choices=TRACKS, help="default shadow")
    parser.add_argument("--out", type=Path, required=True, help="folder for the report files")
    parser.add_argument(
        "--stream",
        default="nepse:predictions",
        help="the prediction stream (NEPSE_PREDICTION_STREAM)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="P(up) at or above which the label is up"
    )
    parser.add_argument("--limit", type=int, help="read at most this many of the newest entries")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.baseline == args.candidate:
        raise UserError(f"--baseline and --candidate are both {args.baseline!r}; pick two tracks")
    if not 0.0 < args.threshold < 1.0:
        raise UserError(f"--threshold {args.threshold}: must be between 0 and 1")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: must be at least 1")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError(
            "shadow-report draws its chart with matplotlib, which is not installed "
            "(pip install 'nepse-predictor[train]')"
        ) from None
    from nepse_predictor.shadow_report import compare, read_log, write_report

    entries = read_log(args.redis_url, args.stream, args.limit)
    report = compare(entries, args.baseline, args.candidate, args.threshold)
    paths = write_report(report, args.out)
    agreement = report["agreement_rate"]
    print(
        f"{report['paired_requests']} paired requests ({report['paired_rows']} rows); "
        f"agreement {'n/a' if agreement is None else f'{agreement:.4f}'}; "
        f"report: {paths['markdown']}"
    )
    return 0
