"""Prediction-log entries as export records, written as JSON Lines or CSV.

Every record says whether its model version is marked void (``void``, ``void_reason``), so an
export that keeps marked entries still tells them apart. In CSV the list fields
(probabilities, labels, features) are JSON text, and a text cell that a spreadsheet would run
as a formula (one starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a
leading ``'``: request ids come from clients.

A file is written next to its destination and renamed into place when complete, so a read
that fails half-way (Redis gone) leaves no partial export behind.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from nepse_predictor.errors import UserError
from nepse_predictor.prediction_log import LogEntry
from nepse_predictor.time_bounds import iso_utc
from nepse_predictor.void_marks import VoidMark

Format = Literal["jsonl", "csv"]
COLUMNS = (
    "entry_id",
    "time",
    "request_id",
    "track",
    "model_version",
    "route",
    "rows",
    "probabilities",
    "labels",
    "latency_ms",
    "void",
    "void_reason",
    "features",
)
_TEXT_COLUMNS = ("request_id", "track", "model_version", "route", "void_reason")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def record(entry: LogEntry, marks: dict[str, VoidMark]) -> dict[str, Any]:
    mark = marks.get(entry.model_version)
    return {
        "entry_id": entry.entry_id,
        "time": iso_utc(entry.ts),
        "request_id": entry.request_id,
        "track": entry.track,
        "model_version": entry.model_version,
        "route": entry.route,
        "rows": len(entry.probabilities),
        "probabilities": list(entry.probabilities),
        "labels": entry.labels,
        "latency_ms": entry.latency_ms,
        "void": mark is not None,
        "void_reason": mark.reason if mark else None,
        "features": entry.features,
    }


def _csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if column in _TEXT_COLUMNS and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def write(records: Iterable[dict[str, Any]], out: IO[str], fmt: Format) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for rec in records:
            writer.writerow([_csv_cell(c, rec[c]) for c in COLUMNS])
            count += 1
        return count
    for rec in records:
        if rec["features"] is None:
            rec = {k: v for k, v in rec.items() if k != "features"}
        out.write(orjson.dumps(rec).decode() + "\n")
        count += 1
    return count


@contextlib.contextmanager
def destination(path: str) -> Iterator[IO[str]]:
    """stdout for ``-``; else a file that appears only when the export completed."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise UserError(f"--out {path}: is a folder; name a file")
    folder = target.parent
    if not folder.is_dir():
        raise UserError(f"--out {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as exc:
        raise UserError(f"--out {path}: cannot write in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
