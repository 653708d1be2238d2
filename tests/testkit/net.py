"""Loopback ports and waiting for servers."""

from __future__ import annotations

import itertools
import os
import random
import socket
import time
import urllib.error
import urllib.request

# Each pytest-xdist worker takes ports from its own block, below the kernel's ephemeral range
# (32768 and up): a port the kernel handed out could be handed again to another worker before
# the first one's server binds it, or taken as an outgoing connection's source port.
_BLOCK = 500
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_FIRST = 20000 + (_WORKER % 24) * _BLOCK
_next = itertools.count(random.randrange(_BLOCK))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from this worker's block."""
    for _ in range(_BLOCK):
        port = _FIRST + next(_next) % _BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_FIRST}-{_FIRST + _BLOCK - 1} on 127.0.0.1")


def wait_for_http(url: str, timeout: float = 20.0, status: int = 200) -> None:
    """Poll `url` until it answers `status`; raise TimeoutError naming the last answer."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == status:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code == status:
                return
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s (last: {last})")
