"""Make an installed virtual environment smaller without changing what it runs.

Used inside the image build (Dockerfile, builder stage):

    python3 slim_venv.py /opt/venv

1. Removes the test suites that wheels ship (directories named ``tests`` inside packages).
2. Strips the symbol tables (``strip --strip-unneeded``) from large extension modules and
   shared libraries that still carry them (uvloop and libxgboost ship unstripped). Libraries
   in auditwheel's ``<dist>.libs/`` folders are left alone: they were rewritten by patchelf.
3. Imports every module whose file was stripped, in a fresh interpreter, and fails the build
   if any of them no longer loads.

Prints what it removed and how many bytes were saved.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

STRIP_MIN_BYTES = 256 * 1024


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(
            f"slim-venv: {venv}: expected one lib/python3*/site-packages, found {found}"
        )
    return found[0]


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def remove_test_suites(site: Path) -> list[Path]:
    removed = []
    for path in sorted(site.glob("*/**/tests")):
        if path.is_dir() and not any(parent in removed for parent in path.parents):
            shutil.rmtree(path)
            removed.append(path)
    return removed


def has_symbol_table(path: Path) -> bool:
    out = subprocess.run(
        ["readelf", "--section-headers", "--wide", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return ".symtab" in out


def module_name(site: Path, path: Path) -> str | None:
    """The importable name of an extension module file, or None for a plain library."""
    relative = path.relative_to(site)
    if not path.name.endswith(".so") or (
        ".cpython-" not in path.name and ".abi3." not in path.name
    ):
        return None
    stem = path.name.split(".", 1)[0]
    return ".".join([*relative.parent.parts, stem])


def strip_binaries(site: Path) -> tuple[list[Path], int]:
    stripped: list[Path] = []
    saved = 0
    for path in sorted(site.rglob("*.so*")):
        if not path.is_file() or path.is_symlink() or path.stat().st_size < STRIP_MIN_BYTES:
            continue
        if any(part.endswith(".libs") for part in path.relative_to(site).parts):
            continue
        if not has_symbol_table(path):
            continue
        before = path.stat().st_size
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
        saved += before - path.stat().st_size
        stripped.append(path)
    return stripped, saved


def check_imports(venv: Path, site: Path, stripped: list[Path]) -> None:
    modules = sorted({name for p in stripped if (name := module_name(site, p))})
    libraries = [str(p) for p in stripped if module_name(site, p) is None]
    code = (
        "import ctypes, importlib, sys\n"
        "for name in sys.argv[1].split():\n"
        "    importlib.import_module(name)\n"
        "for lib in sys.argv[2].split():\n"
        "    ctypes.CDLL(lib)\n"
    )
    python = venv / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", code, " ".join(modules), " ".join(libraries)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit("slim-venv: a stripped module no longer loads:\n" + result.stderr[-4000:])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: slim_venv.py VENV_DIR", file=sys.stderr)
        return 2
    venv = Path(argv[0])
    site = site_packages(venv)
    before = tree_size(venv)
    removed = remove_test_suites(site)
    stripped, saved = strip_binaries(site)
    check_imports(venv, site, stripped)
    after = tree_size(venv)
    print(
        f"slim-venv: removed {len(removed)} test suites, stripped {len(stripped)} binaries "
        f"({saved / 1e6:.1f} MB); {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
