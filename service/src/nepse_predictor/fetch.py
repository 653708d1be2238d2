"""Downloading a model directory for an init container, refusing anything that does not match.

The source is a directory URL (http, https or file) holding `checksums.sha256` and the files it
lists. With `manifest_sha256` (what the chart pins per slot) the manifest itself is checked
first, which pins every file. Files land in a temporary sibling of the destination and are
moved into place only when all of them match, so a failed fetch leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO

from nepse_predictor import artifacts
from nepse_predictor.errors import FetchError, ModelIntegrityError

CHUNK = 1 << 16
SCHEMES = ("http", "https", "file")


def _open(url: str, timeout: float, attempts: int) -> IO[bytes]:
    for attempt in range(1, attempts + 1):
        try:
            # An HTTPResponse, or for file: URLs an addinfourl; both read as a binary file.
            response: IO[bytes] = urllib.request.urlopen(url, timeout=timeout)
            return response
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == attempts:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            if attempt == attempts:
                reason = getattr(exc, "reason", exc)
                raise FetchError(f"{url}: cannot be read: {reason}") from None
        time.sleep(min(2.0**attempt, 10.0) / 4)
    raise AssertionError("unreachable")


def _download(url: str, target: Path, timeout: float, attempts: int) -> str:
    digest = hashlib.sha256()
    with _open(url, timeout, attempts) as response, target.open("wb") as out:
        for block in iter(lambda: response.read(CHUNK), b""):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _directory_url(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in SCHEMES:
        raise FetchError(f"--url {url!r}: scheme must be one of {', '.join(SCHEMES)}")
    return url if url.endswith("/") else url + "/"


def fetch_model(
    url: str,
    dest: str | Path,
    manifest_sha256: str | None = None,
    timeout: float = 30.0,
    attempts: int = 3,
) -> Path:
    """Fetch and verify a model directory into `dest`; return `dest`."""
    base = _directory_url(url)
    dest = Path(dest)
    if manifest_sha256 is not None:
        manifest_sha256 = manifest_sha256.strip().lower()
        if len(manifest_sha256) != 64 or any(c not in "0123456789abcdef" for c in manifest_sha256):
            raise FetchError(f"--sha256 {manifest_sha256!r}: not a 64-character hex sha256")
    if dest.exists() and _already_there(dest, manifest_sha256):
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        manifest_path = staging / artifacts.MANIFEST
        actual = _download(base + artifacts.MANIFEST, manifest_path, timeout, attempts)
        if manifest_sha256 and actual != manifest_sha256:
            raise FetchError(
                f"{base}{artifacts.MANIFEST}: sha256 {actual} does not match the pinned "
                f"{manifest_sha256}"
            )
        try:
            entries = artifacts.parse_manifest(manifest_path.read_text("ascii"), base)
        except (ModelIntegrityError, UnicodeDecodeError) as exc:
            raise FetchError(f"{base}{artifacts.MANIFEST}: {exc}") from None
        for name, expected in entries.items():
            got = _download(base + urllib.parse.quote(name), staging / name, timeout, attempts)
            if got != expected:
                raise FetchError(
                    f"{base}{name}: sha256 {got} does not match the manifest's {expected}"
                )
        artifacts.verify_model_dir(staging)
        staging.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def _already_there(dest: Path, manifest_sha256: str | None) -> bool:
    """True when dest holds a verified copy of the pinned manifest (an idempotent re-run)."""
    if manifest_sha256 is None:
        return False
    manifest = dest / artifacts.MANIFEST
    if not manifest.is_file() or artifacts.sha256_of(manifest) != manifest_sha256:
        return False
    try:
        artifacts.verify_model_dir(dest)
    except ModelIntegrityError:
        return False
    return True
