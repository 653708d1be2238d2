"""Make an installed virtual environment smaller without changing what it runs.

Used inside the image build (Dockerfile, venv stage):

    python3 slim_venv.py /opt/venv [--drop PATH_GLOB ...]

1. Removes the test suites that wheels ship (directories named ``tests`` inside packages) and
   the type stubs (``*.pyi``), which only type checkers read.
2. Removes what ``--drop`` names (globs relative to site-packages), after proving that nothing
   left loads it:
   - a shared library may go only if no other ELF file in the environment lists it (its file
     name or its SONAME) as NEEDED, and no Python file names it (a ``ctypes.CDLL`` call);
   - anything else (a package, a module, a data folder) may go only if no Python file left
     imports it, absolutely or relatively, at the top or lazily inside a function; console
     scripts whose entry point lived in it are removed with it;
   and, after removal, every top-level package of the environment still imports.
3. Strips the symbol tables (``strip --strip-unneeded``) from large extension modules and
   shared libraries that still carry them (uvloop and libxgboost ship unstripped). Libraries
   in auditwheel's ``<dist>.libs/`` folders are left alone: they were rewritten by patchelf.
4. Imports every module whose file was stripped, in a fresh interpreter, and fails the build
   if any of them no longer loads.

Prints what it removed and how many bytes were saved. Compiled ``.pyc`` files of what stays
are kept as they are (startup time depends on them).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

STRIP_MIN_BYTES = 256 * 1024
ELF_MAGIC = b"\x7fELF"


class SlimError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"slim-venv: {message}")


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise SlimError(f"{venv}: expected one lib/python3*/site-packages, found {found}")
    return found[0]


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def is_elf(path: Path) -> bool:
    if not path.is_file() or path.is_symlink():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == ELF_MAGIC


def remove_test_suites(site: Path) -> list[Path]:
    removed = []
    for path in sorted(site.glob("*/**/tests")):
        if path.is_dir() and not any(parent in removed for parent in path.parents):
            shutil.rmtree(path)
            removed.append(path)
    return removed


def remove_stubs(site: Path) -> int:
    stubs = [p for p in site.rglob("*.pyi") if p.is_file()]
    for path in stubs:
        path.unlink()
    return len(stubs)


def dynamic_section(path: Path) -> tuple[str | None, list[str]]:
    """(SONAME, NEEDED libraries) of an ELF file."""
    out = subprocess.run(
        ["readelf", "--dynamic", "--wide", str(path)], check=True, capture_output=True, text=True
    ).stdout
    soname = None
    needed = []
    for line in out.splitlines():
        match = re.search(r"\((NEEDED|SONAME)\)\s+\S+ \S+: \[([^\]]+)\]", line)
        if match and match.group(1) == "NEEDED":
            needed.append(match.group(2))
        elif match:
            soname = match.group(2)
    return soname, needed


def python_files(site: Path, outside: list[Path]) -> list[Path]:
    return [p for p in site.rglob("*.py") if not any(p == o or o in p.parents for o in outside)]


def module_of(site: Path, path: Path) -> str:
    relative = path.relative_to(site)
    parts = list(relative.parts)
    if parts[-1].endswith(".py"):
        parts[-1] = parts[-1][: -len(".py")]
    return ".".join(parts)


def check_droppable(site: Path, targets: list[Path]) -> None:
    """Fail unless nothing that stays loads any of `targets`."""
    libraries = [t for t in targets if is_elf(t)]
    modules = [t for t in targets if t not in libraries]
    staying_elves = [
        p
        for p in site.rglob("*")
        if is_elf(p) and not any(p == t or t in p.parents for t in targets)
    ]
    sources = python_files(site, targets)
    texts = {p: p.read_text(errors="replace") for p in sources}

    for library in libraries:
        soname, _ = dynamic_section(library)
        names = {library.name} | ({soname} if soname else set())
        for elf in staying_elves:
            _, needed = dynamic_section(elf)
            if names & set(needed):
                raise SlimError(f"cannot drop {library.relative_to(site)}: {elf} needs it")
        for path, text in texts.items():
            for name in names:
                if name in text:
                    raise SlimError(
                        f"cannot drop {library.relative_to(site)}: {path} names {name!r}"
                    )
    for module in modules:
        dotted = module_of(site, module)
        for path, text in texts.items():
            for name in imported_names(site, path, text):
                if name == dotted or name.startswith(dotted + "."):
                    raise SlimError(f"cannot drop {dotted}: {path} imports {name}")


IMPORT = re.compile(
    r"^\s*(?:from\s+(\.*)([\w.]*)\s+import\s+([\w., ()]+)|import\s+([\w., ]+))", re.M
)


def imported_names(site: Path, path: Path, text: str) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved), anywhere in
    the file: lazy imports inside functions count too."""
    module = module_of(site, path)
    package = (
        module[: -len(".__init__")] if module.endswith(".__init__") else module.rpartition(".")[0]
    )
    names = set()
    for dots, base, imported, plain in IMPORT.findall(text):
        if plain:
            names.update(part.split(" as ")[0].strip() for part in plain.split(","))
            continue
        if dots:
            parts = package.split(".") if package else []
            parts = parts[: len(parts) - (len(dots) - 1)] if len(dots) > 1 else parts
            base = ".".join(filter(None, [".".join(parts), base]))
        names.add(base)
        for item in imported.strip("() ").split(","):
            item = item.split(" as ")[0].strip()
            if item and item != "*":
                names.add(f"{base}.{item}")
    return names


def drop(venv: Path, site: Path, patterns: list[str]) -> tuple[list[Path], list[Path]]:
    targets: list[Path] = []
    for pattern in patterns:
        matched = sorted(site.glob(pattern))
        if not matched:
            raise SlimError(f"--drop {pattern!r} matches nothing in {site}")
        targets.extend(matched)
    check_droppable(site, targets)
    dotted = [module_of(site, t) for t in targets if not is_elf(t)]
    scripts = []
    for script in sorted((venv / "bin").iterdir()):
        if script.is_file() and not script.is_symlink() and not is_elf(script):
            text = script.read_text(errors="replace")
            if any(re.search(rf"^from {re.escape(d)}(\.| )", text, re.MULTILINE) for d in dotted):
                scripts.append(script)
    for target in targets:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    for script in scripts:
        script.unlink()
    return targets, scripts


def top_level_packages(site: Path) -> list[str]:
    names = set()
    for record in site.glob("*.dist-info/top_level.txt"):
        names.update(line.strip() for line in record.read_text().splitlines() if line.strip())
    for record in site.glob("*.dist-info/RECORD"):
        for line in record.read_text().splitlines():
            first = line.split(",", 1)[0].split("/", 1)[0]
            if first.endswith(".py"):
                first = first[: -len(".py")]
            if (site / first).is_dir() or (site / f"{first}.py").exists():
                names.add(first)
    return sorted(n for n in names if n.isidentifier() and not n.startswith("_"))


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


def check_imports(venv: Path, modules: list[str], libraries: list[str]) -> None:
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
        raise SlimError("a module no longer loads:\n" + result.stderr[-4000:])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path)
    parser.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="GLOB",
        help="remove these (relative to site-packages) once proven unused; repeatable",
    )
    args = parser.parse_args(argv)
    venv: Path = args.venv
    site = site_packages(venv)
    before = tree_size(venv)
    removed = remove_test_suites(site)
    stubs = remove_stubs(site)
    dropped, scripts = drop(venv, site, args.drop)
    check_imports(venv, top_level_packages(site), [])
    stripped, saved = strip_binaries(site)
    check_imports(
        venv,
        sorted({name for p in stripped if (name := module_name(site, p))}),
        [str(p) for p in stripped if module_name(site, p) is None],
    )
    after = tree_size(venv)
    for path in dropped:
        print(f"slim-venv: dropped {path.relative_to(site)}")
    for path in scripts:
        print(f"slim-venv: dropped {path.relative_to(venv)} (its module was dropped)")
    print(
        f"slim-venv: removed {len(removed)} test suites and {stubs} type stubs, "
        f"stripped {len(stripped)} binaries ({saved / 1e6:.1f} MB); "
        f"{before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
