"""Compare two release tracks from the prediction log (a Redis stream).

Every server appends one entry per prediction request (request id, track, model version,
probabilities, latency). A shadow (or canary) track answers the same requests as the
baseline (a mirror sends them with the same X-Request-Id), so pairing the two tracks' entries
by request id compares the models on identical input:

- agreement rate: share of paired rows whose up/down label is the same on both tracks
- mean and max |Δp|: absolute difference of the probabilities
- latency per track: mean, p50, p95 and p99 of the logged prediction latency

Written as Markdown (`shadow-report.md`), a PNG chart (`shadow-report.png`) and the same
numbers as JSON (`shadow-report.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nepse_predictor.errors import UserError

PAGE = 1000


@dataclass
class TrackLog:
    track: str
    entries: int = 0
    versions: set[str] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    by_request: dict[str, list[float]] = field(default_factory=dict)


def read_log(redis_url: str, stream: str, limit: int | None = None) -> list[dict[str, str]]:
    """Entries of the prediction stream, oldest first (at most `limit`, the newest ones)."""
    from redis.exceptions import RedisError

    from nepse_predictor.log_redis import bytes_client

    try:
        client = bytes_client(redis_url, socket_timeout=5, socket_connect_timeout=5)
        if not client.exists(stream):
            raise UserError(f"{redis_url}: stream {stream!r} does not exist or is empty")
        entries: list[dict[str, str]] = []
        upper = "+"
        while True:
            page = client.xrevrange(stream, max=upper, min="-", count=PAGE)
            if not page:
                break
            for _, fields in page:
                entries.append({k.decode(): v.decode() for k, v in fields.items()})
            if limit is not None and len(entries) >= limit:
                entries = entries[:limit]
                break
            upper = f"({page[-1][0].decode()}"  # exclusive: before the oldest one read
        client.close()
    except RedisError as exc:
        raise UserError(f"cannot read the prediction log from {redis_url}: {exc}") from None
    entries.reverse()
    return entries


def collect(entries: list[dict[str, str]], tracks: tuple[str, ...]) -> dict[str, TrackLog]:
    logs = {track: TrackLog(track) for track in tracks}
    for entry in entries:
        log = logs.get(entry.get("track", ""))
        if log is None:
            continue
        try:
            probabilities = [float(p) for p in json.loads(entry["probability"])]
            latency = float(entry["latency_ms"])
        except (KeyError, ValueError, TypeError):
            continue  # an entry this report cannot read is skipped, not fatal
        log.entries += 1
        log.versions.add(entry.get("model_version", "?"))
        log.latencies_ms.append(latency)
        log.by_request[entry.get("request_id", "")] = probabilities  # the latest entry wins
    return logs


def _latency(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p95": None, "p99": None}
    array = np.asarray(values)
    return {
        "mean": float(array.mean()),
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "p99": float(np.percentile(array, 99)),
    }


def compare(
    entries: list[dict[str, str]], baseline: str, candidate: str, threshold: float = 0.5
) -> dict[str, Any]:
    """The report's numbers, plus the paired probabilities (for the chart)."""
    logs = collect(entries, (baseline, candidate))
    base, cand = logs[baseline], logs[candidate]
    p_base: list[float] = []
    p_cand: list[float] = []
    paired_requests = 0
    mismatched = 0
    for request_id, theirs in cand.by_request.items():
        ours = base.by_request.get(request_id)
        if ours is None:
            continue
        if len(ours) != len(theirs):
            mismatched += 1
            continue
        paired_requests += 1
        p_base.extend(ours)
        p_cand.extend(theirs)
    a, b = np.asarray(p_base), np.asarray(p_cand)
    diff = np.abs(a - b)
    agree = (a >= threshold) == (b >= threshold)
    return {
        "baseline": baseline,
        "candidate": candidate,
        "threshold": threshold,
        "entries": {baseline: base.entries, candidate: cand.entries},
        "model_versions": {baseline: sorted(base.versions), candidate: sorted(cand.versions)},
        "paired_requests": paired_requests,
        "paired_rows": len(a),
        "unpaired_requests": {
            baseline: len(set(base.by_request) - set(cand.by_request)),
            candidate: len(set(cand.by_request) - set(base.by_request)),
        },
        "row_count_mismatches": mismatched,
        "agreement_rate": float(agree.mean()) if len(a) else None,
        "mean_abs_diff": float(diff.mean()) if len(a) else None,
        "max_abs_diff": float(diff.max()) if len(a) else None,
        "latency_ms": {
            baseline: _latency(base.latencies_ms),
            candidate: _latency(cand.latencies_ms),
        },
        "_pairs": (a, b),
        "_latencies": {baseline: base.latencies_ms, candidate: cand.latencies_ms},
    }


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def to_markdown(report: dict[str, Any], chart_name: str) -> str:
    base, cand = report["baseline"], report["candidate"]
    lines = [
        f"# Shadow report: {cand} vs {base}",
        "",
        f"Predictions logged by both tracks for the same request id, compared row by row "
        f"(label threshold {report['threshold']}).",
        "",
        "| | value |",
        "|---|---|",
        f"| paired requests | {report['paired_requests']} |",
        f"| paired rows | {report['paired_rows']} |",
        f"| agreement rate | {_fmt(report['agreement_rate'])} |",
        f"| mean abs(Δp) | {_fmt(report['mean_abs_diff'], 6)} |",
        f"| max abs(Δp) | {_fmt(report['max_abs_diff'], 6)} |",
        f"| requests only in {base} | {report['unpaired_requests'][base]} |",
        f"| requests only in {cand} | {report['unpaired_requests'][cand]} |",
        "",
        "## Per track",
        "",
        "| track | model version(s) | entries | latency mean ms | p50 | p95 | p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for track in (base, cand):
        latency = report["latency_ms"][track]
        versions = ", ".join(report["model_versions"][track]) or "n/a"
        lines.append(
            f"| {track} | {versions} | {report['entries'][track]} | {_fmt(latency['mean'], 3)} "
            f"| {_fmt(latency['p50'], 3)} | {_fmt(latency['p95'], 3)} | {_fmt(latency['p99'], 3)} |"
        )
    if report["paired_rows"] == 0:
        lines += ["", f"No request was logged by both {base} and {cand}: nothing to compare."]
    lines += ["", f"![probabilities and latency]({chart_name})", ""]
    return "\n".join(lines)


def draw_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base, cand = report["baseline"], report["candidate"]
    a, b = report["_pairs"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
    if len(a):
        left.scatter(a, b, s=8, alpha=0.6)
    left.axhline(report["threshold"], color="lightgrey", linewidth=0.8)
    left.axvline(report["threshold"], color="lightgrey", linewidth=0.8)
    left.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"P(up), {base}", ylabel=f"P(up), {cand}")
    left.set_title(
        f"agreement {_fmt(report['agreement_rate'], 3)}, mean |Δp| "
        f"{_fmt(report['mean_abs_diff'], 4)} ({report['paired_rows']} rows)"
    )
    latencies = [report["_latencies"][base] or [0.0], report["_latencies"][cand] or [0.0]]
    right.boxplot(latencies, showfliers=False)
    right.set_xticks([1, 2], [base, cand])
    right.set_ylabel("prediction latency (ms)")
    right.set_title("latency per track")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "shadow-report.md",
        "chart": out_dir / "shadow-report.png",
        "json": out_dir / "shadow-report.json",
    }
    draw_chart(report, paths["chart"])
    paths["markdown"].write_text(to_markdown(report, paths["chart"].name), encoding="utf-8")
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    paths["json"].write_text(json.dumps(public, indent=2) + "\n", encoding="utf-8")
    return paths
