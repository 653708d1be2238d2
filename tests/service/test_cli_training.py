"""The train and sample-data commands as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys


def _cli(*args: str):
    return subprocess.run(
        [sys.executable, "-m", "nepse_predictor.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_sample_data_then_train_prints_metrics_against_the_baseline(tmp_path):
    csv_path = tmp_path / "prices.csv"
    made = _cli("sample-data", "--out", str(csv_path), "--symbols", "NTC", "NABIL", "--days", "200")
    assert made.returncode == 0, made.stderr
    trained = _cli("train", "--data", str(csv_path), "--out", str(tmp_path / "m"), "--version", "x")
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["version"] == "x"
    assert summary["baseline_auc"] == 0.5
    assert summary["onnx_max_abs_diff"] <= 1e-5
    verified = _cli("verify-model", summary["model_dir"], "--print-manifest-sha256")
    assert len(verified.stdout.strip()) == 64


def test_a_bad_csv_gives_one_clear_line_and_exit_status_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close\n2024-01-01,1,2,1,1.5\n")
    result = _cli("train", "--data", str(bad), "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"nepse-predictor train: error: {bad}: missing column(s) Volume "
        "(found: Date, Open, High, Low, Close)"
    )


def test_verify_model_names_a_tampered_file(trained_model, tmp_path):
    import shutil

    copy = shutil.copytree(trained_model, tmp_path / "copy")
    (copy / "metadata.json").write_text("{}")
    result = _cli("verify-model", str(copy))
    assert result.returncode == 2
    assert "metadata.json: checksum mismatch" in result.stderr
