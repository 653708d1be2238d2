"""The model directory: what a trained version consists of and how it is verified.

    models/<version>/
        model.ubj          XGBoost native model
        model.onnx         the same model for ONNX Runtime (serving and edge)
        model.joblib       optional: the scikit-learn style estimator (the chapter's .pkl flow)
        metadata.json      version, features, metrics, parity check, library versions
        checksums.sha256   "<sha256>  <file>" for every file above

Nothing in a model directory is used before `verify_model_dir` has matched it to the manifest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nepse_predictor.errors import ModelIntegrityError

MODEL_NAME = "nepse-predictor"
MANIFEST = "checksums.sha256"
METADATA = "metadata.json"
XGBOOST_FILE = "model.ubj"
ONNX_FILE = "model.onnx"
JOBLIB_FILE = "model.joblib"
REQUIRED_FILES = (METADATA, XGBOOST_FILE, ONNX_FILE)
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([A-Za-z0-9._-]+)$")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(model_dir: Path) -> Path:
    """Write checksums.sha256 for every regular file in the directory (sorted by name)."""
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.name != MANIFEST)
    lines = [f"{sha256_of(p)}  {p.name}\n" for p in files]
    manifest = model_dir / MANIFEST
    manifest.write_text("".join(lines), encoding="ascii")
    return manifest


def parse_manifest(text: str, source: str) -> dict[str, str]:
    """File name -> sha256 from manifest text; reject anything but plain file names."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _MANIFEST_LINE.match(line.strip())
        if not match or match.group(2) in (".", ".."):
            raise ModelIntegrityError(
                f"{source}: line {number} is not '<sha256>  <file name>': {line.strip()!r}"
            )
        entries[match.group(2)] = match.group(1)
    missing = [name for name in REQUIRED_FILES if name not in entries]
    if missing:
        raise ModelIntegrityError(f"{source}: does not list {', '.join(missing)}")
    return entries


def read_manifest(model_dir: Path) -> dict[str, str]:
    manifest = model_dir / MANIFEST
    if not manifest.is_file():
        raise ModelIntegrityError(f"{model_dir}: no {MANIFEST}; not a model directory")
    return parse_manifest(manifest.read_text(encoding="ascii", errors="replace"), str(manifest))


def verify_model_dir(model_dir: str | Path) -> dict[str, Any]:
    """Check every listed file against the manifest; return the parsed metadata."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelIntegrityError(f"{model_dir}: model directory does not exist")
    for name, expected in read_manifest(model_dir).items():
        path = model_dir / name
        if not path.is_file():
            raise ModelIntegrityError(f"{path}: listed in {MANIFEST} but missing")
        actual = sha256_of(path)
        if actual != expected:
            raise ModelIntegrityError(
                f"{path}: checksum mismatch (manifest {expected[:12]}…, file {actual[:12]}…); "
                "the file was changed after training"
            )
    return load_metadata(model_dir)


def load_metadata(model_dir: Path) -> dict[str, Any]:
    path = model_dir / METADATA
    try:
        metadata: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"{path}: cannot be read as JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise ModelIntegrityError(f"{path}: is not a JSON object")
    for key in ("name", "version", "features"):
        if key not in metadata:
            raise ModelIntegrityError(f"{path}: field {key!r} is missing")
    return metadata


def load_joblib_estimator(model_dir: str | Path) -> Any:
    """The joblib estimator, loaded only when the manifest lists it with a matching checksum.

    Unpickling runs code, so an unlisted or altered file is refused before it is opened.
    """
    model_dir = Path(model_dir)
    entries = read_manifest(model_dir)
    path = model_dir / JOBLIB_FILE
    if JOBLIB_FILE not in entries:
        raise ModelIntegrityError(f"{path}: not listed in {MANIFEST}; refusing to unpickle it")
    if not path.is_file():
        raise ModelIntegrityError(f"{path}: listed in {MANIFEST} but missing")
    if sha256_of(path) != entries[JOBLIB_FILE]:
        raise ModelIntegrityError(f"{path}: checksum mismatch; refusing to unpickle it")
    import joblib

    return joblib.load(path)


@dataclass(frozen=True)
class VersionChoice:
    """Which version under a models root to serve, and why."""

    root: Path
    chosen: Path | None
    newest: Path | None
    # Newer versions passed over because they failed verification: (directory, reason).
    skipped: tuple[tuple[Path, str], ...] = ()


def _created(directory: Path) -> str:
    # Only for ordering; nothing from an unverified directory is used otherwise.
    try:
        return str(json.loads((directory / METADATA).read_text(encoding="utf-8"))["created"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def model_versions(root: str | Path) -> list[Path]:
    """The version directories under `root` (those with a manifest), newest first, by their
    metadata's 'created' and then by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [child for child in root.iterdir() if (child / MANIFEST).is_file()]
    return sorted(found, key=lambda child: (_created(child), child.name), reverse=True)


def choose_model_version(root: str | Path, fall_back: bool = False) -> VersionChoice:
    """The newest version under `root`; with `fall_back`, the newest one that verifies, the
    newer ones that do not listed with the file and the problem."""
    root = Path(root)
    versions = model_versions(root)
    newest = versions[0] if versions else None
    if not fall_back:
        return VersionChoice(root, newest, newest)
    skipped: list[tuple[Path, str]] = []
    for directory in versions:
        try:
            verify_model_dir(directory)
        except ModelIntegrityError as exc:
            skipped.append((directory, str(exc)))
            continue
        return VersionChoice(root, directory, newest, tuple(skipped))
    return VersionChoice(root, None, newest, tuple(skipped))
