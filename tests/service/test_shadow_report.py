"""shadow-report: two tracks' logged predictions paired by request id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from serving_kit import example_row, wait_until

from nepse_predictor.features import FEATURE_NAMES
from nepse_predictor.model import load_model
from nepse_predictor.shadow_report import compare, to_markdown
from testkit.net import free_port


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nepse_predictor.cli", "shadow-report", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def entry(rid: str, track: str, p: list[float], latency: float = 1.0) -> dict[str, str]:
    return {
        "request_id": rid,
        "track": track,
        "model_version": f"{track}-v",
        "probability": json.dumps(p),
        "latency_ms": str(latency),
        "rows": str(len(p)),
    }


def test_compare_pairs_rows_by_request_id() -> None:
    entries = [
        entry("a", "stable", [0.6, 0.2], 1.0),
        entry("a", "shadow", [0.7, 0.6], 3.0),  # row 2 disagrees
        entry("b", "stable", [0.45], 2.0),
        entry("b", "shadow", [0.40], 4.0),
        entry("c", "stable", [0.9], 1.0),  # only in stable
        entry("d", "shadow", [0.1, 0.1], 1.0),  # only in shadow
        entry("e", "canary", [0.5], 1.0),  # another track: ignored
    ]
    report = compare(entries, "stable", "shadow")
    assert report["paired_requests"] == 2 and report["paired_rows"] == 3
    assert report["agreement_rate"] == pytest.approx(2 / 3)
    assert report["mean_abs_diff"] == pytest.approx((0.1 + 0.4 + 0.05) / 3)
    assert report["max_abs_diff"] == pytest.approx(0.4)
    assert report["unpaired_requests"] == {"stable": 1, "shadow": 1}
    assert report["latency_ms"]["stable"]["mean"] == pytest.approx(4 / 3)
    assert report["latency_ms"]["shadow"]["p50"] == pytest.approx(3.0)
    text = to_markdown(report, "chart.png")
    assert (
        "| agreement rate | 0.6667 |" in text and "![probabilities and latency](chart.png)" in text
    )


def test_compare_with_nothing_paired_says_so() -> None:
    report = compare([entry("a", "stable", [0.5])], "stable", "shadow")
    assert report["agreement_rate"] is None
    assert "nothing to compare" in to_markdown(report, "c.png")


def test_shadow_track_is_compared_with_stable_end_to_end(
    start_server, trained_model: Path, second_model: Path, redis_server, tmp_path: Path
) -> None:
    stable = start_server(trained_model, redis_url=redis_server.url, track="stable")
    shadow = start_server(second_model, redis_url=redis_server.url, track="shadow")
    rng = np.random.default_rng(5)
    rows = [example_row(float(s)) for s in rng.normal(0, 1.5, 40)]
    for i, row in enumerate(rows):
        # What a mirror does: the same request, with the same request id, to both tracks.
        for server in (stable, shadow):
            response = server.post(
                "/v1/predict", {"features": row}, headers={"x-request-id": f"mirror-{i}"}
            )
            assert response.status_code == 200
    stable.post("/v1/predict", {"features": rows[0]}, headers={"x-request-id": "only-stable"})

    # Live comparison on the shadow server, as its predictions are logged.
    wait_until(
        lambda: shadow.metric("nepse_shadow_comparisons_total", baseline="stable") >= 40,
        what="live shadow comparisons",
    )

    out = tmp_path / "report"
    done = cli(
        "--redis-url",
        redis_server.url,
        "--baseline",
        "stable",
        "--candidate",
        "shadow",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "40 paired requests" in done.stdout
    report = json.loads((out / "shadow-report.json").read_text())
    x = np.array([[r[n] for n in FEATURE_NAMES] for r in rows], dtype=np.float32)
    p_stable = load_model(trained_model).predict_proba(x).astype(np.float64)
    p_shadow = load_model(second_model).predict_proba(x).astype(np.float64)
    expected_agreement = float(np.mean((p_stable >= 0.5) == (p_shadow >= 0.5)))
    assert report["paired_requests"] == 40
    assert report["agreement_rate"] == pytest.approx(expected_agreement)
    assert report["mean_abs_diff"] == pytest.approx(np.mean(np.abs(p_stable - p_shadow)), abs=1e-6)
    assert report["model_versions"] == {"stable": ["v1"], "shadow": ["v2"]}
    assert report["unpaired_requests"]["stable"] == 1
    assert report["latency_ms"]["shadow"]["p99"] > 0
    assert (out / "shadow-report.png").read_bytes().startswith(b"\x89PNG")
    markdown = (out / "shadow-report.md").read_text()
    assert "# Shadow report: shadow vs stable" in markdown

    agree = shadow.metric("nepse_shadow_comparisons_total", baseline="stable", result="agree")
    assert agree == pytest.approx(round(expected_agreement * 40))
    assert shadow.metric("nepse_shadow_abs_diff_count", baseline="stable") == 40


def test_report_errors_name_the_problem(redis_server, tmp_path: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    done = cli("--redis-url", closed, "--out", str(tmp_path))
    assert done.returncode == 2 and "cannot read the prediction log" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("--redis-url", redis_server.url, "--out", str(tmp_path))
    assert done.returncode == 2 and "'nepse:predictions' does not exist" in done.stderr
    done = cli(
        "--redis-url",
        redis_server.url,
        "--baseline",
        "green",
        "--candidate",
        "green",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 2 and "pick two tracks" in done.stderr
    for option, value in [("--threshold", "1.5"), ("--limit", "0")]:
        done = cli("--redis-url", redis_server.url, option, value, "--out", str(tmp_path))
        assert done.returncode == 2 and f"{option} {value}" in done.stderr


def test_unreadable_entries_are_skipped() -> None:
    entries = [
        entry("a", "stable", [0.6]),
        {"track": "shadow", "probability": "oops"},
        entry("a", "shadow", [0.6]),
    ]
    report = compare(entries, "stable", "shadow")
    assert report["paired_rows"] == 1 and report["agreement_rate"] == 1.0
    assert orjson.dumps({k: v for k, v in report.items() if not k.startswith("_")})
