"""Assemble the root filesystem of the runtime image: only what the server runs on.

Used inside the image build (Dockerfile, rootfs stage), with the base image's Python:

    python3 make_rootfs.py --venv /opt/venv --out /rootfs --user nepse:10001

The runtime image is `FROM scratch` plus this tree plus the virtual environment. The tree holds:

1. The Python interpreter the virtual environment points at (the symlink chain from
   ``<venv>/bin/python3`` to the binary) and its standard library, minus the parts a server
   never imports: IDLE, Tk, turtle, lib2to3, ensurepip, distutils, pydoc's topic data, the
   build configuration (config-3.X-*), CPython's own test modules, and the extension modules
   that need system libraries nothing here uses (curses, readline, dbm, nis, sqlite3, crypt).
2. Every shared library that the interpreter, the kept extension modules and every ELF file in
   the virtual environment load, found with ``ldd`` (so the result follows the base image:
   Debian's python3 in /usr, or an official Python image's /usr/local), plus ``libgcc_s``,
   which glibc loads at run time to unwind threads. A library that ``ldd`` cannot find and
   that no wheel bundles fails the build, naming the file that needs it.
3. What the C library and Python read from /etc: os-release, nsswitch.conf, the loader's
   configuration with a cache made for this tree (``ldconfig -r``), OpenSSL's configuration,
   the CA bundle (``--ca-bundle``; ``SSL_CERT_FILE`` points at it in the image), and
   passwd/group files holding root and the server's user. /tmp is world-writable and sticky.
4. For security scanners: each Debian package that supplied files gets its status entry in
   /var/lib/dpkg/status.d/<package> (the layout distroless images use) and its copyright file.

Symlinks are copied as symlinks and their targets followed, so merged-/usr links (/lib ->
usr/lib) and /etc/os-release -> ../usr/lib/os-release stay what they were. Prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

# Relative to the standard library directory. Top-level names only.
STDLIB_EXCLUDED = {
    "site-packages",
    "dist-packages",
    "idlelib",
    "tkinter",
    "turtledemo",
    "turtle.py",
    "lib2to3",
    "ensurepip",
    "distutils",
    "pydoc_data",
    "test",
    "curses",
    "sqlite3",
    "crypt.py",
    "__phello__",
}
# Extension modules in lib-dynload, by the name before the first dot.
DYNLOAD_EXCLUDED = {
    "_curses",
    "_curses_panel",
    "readline",
    "_dbm",
    "_gdbm",
    "nis",
    "_sqlite3",
    "_crypt",
    "_tkinter",
    "ossaudiodev",
    "_ctypes_test",
    "_testbuffer",
    "_testcapi",
    "_testclinic",
    "_testimportmultiple",
    "_testinternalcapi",
    "_testmultiphase",
    "_xxtestfuzz",
    "xxlimited",
    "xxlimited_35",
}
# Loaded with dlopen() by glibc (pthread_exit/cancel unwinding), so ldd never lists it.
DLOPENED = ("libgcc_s.so.1",)
LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
)
ETC_FILES = (
    "/etc/os-release",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/ld.so.conf",
    "/usr/lib/ssl/openssl.cnf",
)
ELF_MAGIC = b"\x7fELF"


class RootfsError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"make-rootfs: {message}")


class Tree:
    """Copies paths of this filesystem into `out`, keeping symlinks and following them."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.done: set[str] = set()
        self.files: list[str] = []  # regular files and symlinks copied, as source paths

    def dest(self, path: str) -> Path:
        # The real location of the parent, so that writing never goes through a symlink that
        # points outside `out` (an absolute link such as sitecustomize.py -> /etc/...).
        parent = os.path.realpath(os.path.dirname(path))
        return Path(str(self.out) + parent) / os.path.basename(path)

    def add(self, path: str) -> None:
        path = os.path.normpath(path)
        if path in self.done or path == "/":
            return
        if not os.path.lexists(path):
            raise RootfsError(f"{path}: does not exist")
        self.done.add(path)
        self.add(os.path.dirname(path))
        dest = self.dest(path)
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            if not dest.is_symlink():
                dest.symlink_to(target)
            self.files.append(path)
            resolved = (
                target if target.startswith("/") else os.path.join(os.path.dirname(path), target)
            )
            self.add(resolved)
        elif stat.S_ISDIR(info.st_mode):
            dest.mkdir(exist_ok=True)
            dest.chmod(stat.S_IMODE(info.st_mode))
        elif stat.S_ISREG(info.st_mode):
            shutil.copy2(path, dest)  # keeps mtimes: the .pyc files stay valid
            self.files.append(path)
        else:
            raise RootfsError(f"{path}: not a file, directory or symlink")

    def add_tree(self, root: str, excluded: set[str], dynload_excluded: set[str]) -> None:
        self.add(root)
        for entry in sorted(os.listdir(root)):
            # config-3.X-<platform>/: the Makefile and static library for building extensions.
            if entry in excluded or entry.startswith("config-3"):
                continue
            path = os.path.join(root, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                for folder, dirs, names in os.walk(path):
                    dirs.sort()
                    self.add(folder)
                    for name in sorted(names):
                        if os.path.basename(folder) == "lib-dynload" and (
                            name.split(".", 1)[0] in dynload_excluded
                        ):
                            continue
                        if folder == os.path.join(root, "__pycache__") and (
                            name.split(".", 1)[0] + ".py" in excluded
                        ):
                            continue
                        self.add(os.path.join(folder, name))
                    for name in dirs:
                        if os.path.islink(os.path.join(folder, name)):
                            self.add(os.path.join(folder, name))
            else:
                self.add(path)


def interpreter_info(venv: Path) -> dict[str, str]:
    code = (
        "import json, sys, sysconfig\n"
        "print(json.dumps({'stdlib': sysconfig.get_path('stdlib'),"
        " 'platstdlib': sysconfig.get_path('platstdlib'),"
        " 'executable': sys.executable, 'version': sys.version.split()[0]}))\n"
    )
    # The base interpreter itself, not the venv's python3: inside a venv, sysconfig's
    # platstdlib names the venv.
    python = os.path.realpath(venv / "bin" / "python3")
    result = subprocess.run([python, "-I", "-c", code], check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def elf_files(root: str) -> list[str]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path) and is_elf(path):
                found.append(path)
    return sorted(found)


def needed_libraries(paths: list[str], bundled: set[str]) -> set[str]:
    """The shared libraries (absolute paths, as the loader resolves them) that `paths` load.

    `bundled` names the libraries that wheels carry (auditwheel's `<dist>.libs/`): ldd cannot
    resolve them for another bundled library (they are found through the RPATH of the
    extension module that loads both), so they are not missing.
    """
    libraries: set[str] = set()
    for path in paths:
        result = subprocess.run(["ldd", path], capture_output=True, text=True)
        text = result.stdout + result.stderr
        if "not a dynamic executable" in text or "statically linked" in text:
            continue
        if result.returncode != 0:
            raise RootfsError(f"ldd {path} failed: {text.strip()}")
        for line in result.stdout.splitlines():
            line = line.strip()
            if "=> not found" in line:
                if line.split()[0] in bundled:
                    continue
                raise RootfsError(f"{path} needs {line.split()[0]}, which is not installed")
            if "=>" in line:
                target = line.split("=>", 1)[1].split("(", 1)[0].strip()
            else:
                target = line.split("(", 1)[0].strip()
            if target.startswith("/"):
                libraries.add(target)
    return libraries


def find_library(name: str) -> str:
    for folder in LIBRARY_DIRS:
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate):
            return candidate
    raise RootfsError(f"{name} not found in {', '.join(LIBRARY_DIRS)}")


def write_accounts(out: Path, user: str, uid: int) -> None:
    etc = out / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{user}:x:{uid}:{uid}:{user}:/tmp:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{user}:x:{uid}:\n")
    for name in ("passwd", "group"):
        (etc / name).chmod(0o644)


def package_owners() -> dict[str, str]:
    """Installed file -> Debian package, with paths normalised through directory symlinks."""
    owners: dict[str, str] = {}
    info = Path("/var/lib/dpkg/info")
    if not info.is_dir():
        return owners
    for listing in sorted(info.glob("*.list")):
        package = listing.name[: -len(".list")]
        for line in listing.read_text(errors="replace").splitlines():
            # Files and file symlinks only: directories are shared by many packages.
            if line.startswith("/") and not os.path.isdir(line):
                real = os.path.join(os.path.realpath(os.path.dirname(line)), os.path.basename(line))
                owners.setdefault(real, package)
    return owners


def write_package_records(out: Path, files: list[str]) -> list[str]:
    owners = package_owners()
    packages = sorted(
        {
            owners[key]
            for path in files
            if (
                key := os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
            )
            in owners
        }
    )
    if not packages:
        return []
    status_dir = out / "var" / "lib" / "dpkg" / "status.d"
    status_dir.mkdir(parents=True, exist_ok=True)
    for package in packages:
        status = subprocess.run(
            ["dpkg-query", "--status", package], check=True, capture_output=True, text=True
        ).stdout
        (status_dir / package.split(":", 1)[0]).write_text(status)
        name = package.split(":", 1)[0]
        copyright_file = f"/usr/share/doc/{name}/copyright"
        if os.path.exists(copyright_file):
            dest = out / copyright_file.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(copyright_file, dest)
    return packages


def tree_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, required=True, help="the virtual environment")
    parser.add_argument("--out", type=Path, required=True, help="where to build the tree")
    parser.add_argument("--user", required=True, help="NAME:UID of the server's user")
    parser.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args(argv)
    user, _, uid_text = args.user.partition(":")
    if not user or not uid_text.isdigit():
        raise RootfsError(f"--user {args.user!r}: expected NAME:UID, e.g. nepse:10001")
    if args.out.exists() and any(args.out.iterdir()):
        raise RootfsError(f"{args.out}: exists and is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    tree = Tree(args.out)

    info = interpreter_info(args.venv)
    # The interpreter, through the venv's symlink chain (python3 -> /usr/bin/python3 -> ...).
    for name in ("python3", "python"):
        link = args.venv / "bin" / name
        if link.is_symlink():
            target = os.readlink(link)
            if target.startswith("/"):
                tree.add(target)
    tree.add(os.path.realpath(info["executable"]))

    for key in ("stdlib", "platstdlib"):
        tree.add_tree(info[key], STDLIB_EXCLUDED, DYNLOAD_EXCLUDED)

    stdlib_elves = [
        path
        for path in tree.files
        if os.path.isfile(path) and not os.path.islink(path) and is_elf(path)
    ]
    venv_elves = elf_files(str(args.venv))
    venv_root = os.path.realpath(args.venv)
    libraries = {
        path
        for path in needed_libraries(stdlib_elves + venv_elves, {Path(p).name for p in venv_elves})
        if not os.path.realpath(path).startswith(venv_root + os.sep)
    }
    libraries.update(find_library(name) for name in DLOPENED)
    for library in sorted(libraries):
        tree.add(library)

    for path in ETC_FILES:
        if os.path.lexists(path):
            tree.add(path)
    if os.path.isdir("/etc/ld.so.conf.d"):
        tree.add("/etc/ld.so.conf.d")
        for name in sorted(os.listdir("/etc/ld.so.conf.d")):
            tree.add(os.path.join("/etc/ld.so.conf.d", name))
    if not os.path.isfile(args.ca_bundle):
        raise RootfsError(f"--ca-bundle {args.ca_bundle}: no such file")
    tree.add(args.ca_bundle)

    write_accounts(args.out, user, int(uid_text))
    tmp = args.out / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)

    packages = write_package_records(args.out, tree.files)
    # The loader's cache, made for exactly the libraries in this tree.
    subprocess.run(["ldconfig", "-X", "-r", str(args.out)], check=True)

    print(
        f"make-rootfs: Python {info['version']}, {len(tree.files)} files and links, "
        f"{len(libraries)} shared libraries, {len(packages)} Debian packages recorded; "
        f"{tree_bytes(args.out) / 1e6:.1f} MB in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
