"""Model directory verification: nothing is used before it matches its checksums."""

from __future__ import annotations

import shutil

import pytest

from nepse_predictor import artifacts
from nepse_predictor.errors import ModelIntegrityError


@pytest.fixture
def model_copy(trained_model, tmp_path):
    return shutil.copytree(trained_model, tmp_path / trained_model.name)


def test_a_changed_byte_is_named_with_its_file(model_copy):
    onnx = model_copy / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[100] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"model.onnx: checksum mismatch"):
        artifacts.verify_model_dir(model_copy)


def test_a_missing_listed_file_is_named(model_copy):
    (model_copy / "model.ubj").unlink()
    with pytest.raises(ModelIntegrityError, match=r"model.ubj: listed in checksums.sha256 but"):
        artifacts.verify_model_dir(model_copy)


def test_a_directory_without_manifest_is_not_a_model(model_copy):
    (model_copy / "checksums.sha256").unlink()
    with pytest.raises(ModelIntegrityError, match=r"no checksums.sha256; not a model directory"):
        artifacts.verify_model_dir(model_copy)


def test_a_manifest_entry_with_a_path_is_refused(model_copy):
    manifest = model_copy / "checksums.sha256"
    manifest.write_text(manifest.read_text() + f"{'0' * 64}  ../../etc/passwd\n")
    with pytest.raises(ModelIntegrityError, match=r"line 5 is not '<sha256>  <file name>'"):
        artifacts.verify_model_dir(model_copy)


def test_joblib_is_loaded_only_when_its_checksum_matches(model_copy):
    estimator = artifacts.load_joblib_estimator(model_copy)
    assert hasattr(estimator, "predict_proba")
    joblib_file = model_copy / "model.joblib"
    joblib_file.write_bytes(joblib_file.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match=r"checksum mismatch; refusing to unpickle"):
        artifacts.load_joblib_estimator(model_copy)


def test_an_unlisted_joblib_file_is_never_unpickled(trained_model, tmp_path):
    copy = shutil.copytree(trained_model, tmp_path / "unlisted")
    manifest = copy / "checksums.sha256"
    manifest.write_text(
        "".join(line for line in manifest.read_text().splitlines(True) if "joblib" not in line)
    )
    with pytest.raises(ModelIntegrityError, match=r"not listed in checksums.sha256; refusing"):
        artifacts.load_joblib_estimator(copy)


def test_the_newest_version_is_chosen_even_when_it_is_broken(trained_model, second_model, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(trained_model, root / "v1")
    newer = shutil.copytree(second_model, root / "v2")
    broken = shutil.copytree(second_model, root / "v3-broken")
    (broken / "model.onnx").write_bytes(b"not a model")
    assert artifacts.model_versions(root)[:2] == [broken, newer]
    choice = artifacts.choose_model_version(root)
    assert choice.chosen == choice.newest == broken and choice.skipped == ()
    assert artifacts.choose_model_version(tmp_path / "absent").chosen is None


def test_falling_back_names_each_version_passed_over_and_its_file(
    trained_model, second_model, tmp_path
):
    root = tmp_path / "root"
    root.mkdir()
    older = shutil.copytree(trained_model, root / "v1")
    broken = shutil.copytree(second_model, root / "v2")
    (broken / "model.onnx").write_bytes(b"not a model")
    choice = artifacts.choose_model_version(root, fall_back=True)
    assert choice.chosen == older and choice.newest == broken
    [(skipped, reason)] = choice.skipped
    assert skipped == broken and f"{broken / 'model.onnx'}: checksum mismatch" in reason
