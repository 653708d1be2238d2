"""What the real cluster may leave on the host, read before it comes up and after it is gone.

Only the cluster's own traces are compared (its processes, mounts, links, routes, nftables
tables, cgroups, namespace, host paths and sysctls), so other work on the machine (podman,
other test sessions) does not disturb the comparison.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

NETNS = "nepse-node"
HOST_VETH = "nepse-h0"
ROUTED = ("10.232.0.0/16", "10.233.0.0/24")
HOST_PATHS = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd/s",
    "/run/netns",
)
SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns", "containerd", "containerd-shim-runc-v2")


def _out(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


@dataclass(frozen=True)
class HostState:
    processes: frozenset[str]
    mounts: frozenset[str]
    links: bool
    routes: frozenset[str]
    nft_tables: frozenset[str]
    cgroups: frozenset[str]
    netns: bool
    host_paths: frozenset[str]
    sysctls: tuple[tuple[str, str], ...]

    @classmethod
    def read(cls, state_dir: Path) -> HostState:
        processes = set()
        for proc in Path("/proc").glob("[0-9]*"):
            if int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                exe = Path((proc / "exe").readlink()).name
            except OSError:
                continue
            if str(state_dir) in cmdline or (exe in NODE_BINARIES and "nepse" in cmdline):
                processes.add(f"{proc.name} {cmdline.strip()}")
        mounts = {
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if str(state_dir) in line.split()[4] or f"/run/netns/{NETNS}" == line.split()[4]
        }
        routes = {r for r in _out("ip", "route").splitlines() if r.split()[0] in ROUTED}
        tables = {t for t in _out("nft", "list", "tables").splitlines() if "kube" in t}
        cgroups = {str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods")}
        netns = NETNS in _out("ip", "netns", "list").split()
        return cls(
            processes=frozenset(processes),
            mounts=frozenset(mounts),
            links=HOST_VETH in _out("ip", "-o", "link"),
            routes=frozenset(routes),
            nft_tables=frozenset(tables),
            cgroups=frozenset(cgroups),
            netns=netns,
            host_paths=frozenset(p for p in HOST_PATHS if Path(p).exists()),
            sysctls=tuple((k, _out("sysctl", "-n", k).strip()) for k in SYSCTLS),
        )

    def differences(self, before: HostState) -> list[str]:
        problems = []
        for name in self.__dataclass_fields__:
            now, then = getattr(self, name), getattr(before, name)
            if now != then:
                problems.append(f"{name}: before {sorted_repr(then)}, after {sorted_repr(now)}")
        return problems


def sorted_repr(value: object) -> str:
    if isinstance(value, frozenset):
        return repr(sorted(value))
    return repr(value)
