"""Lines a test tier prints to the terminal while pytest captures output, and namespaces."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from testkit.cluster import Cluster

REPORTED = pytest.StashKey[list[str]]()


def print_past_capture(config: pytest.Config, line: str) -> None:
    """Print a line to the terminal even while pytest captures output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def report_line(config: pytest.Config, line: str) -> None:
    """Print ``line`` now (past pytest's capture) and again in the run's summary."""
    config.stash.setdefault(REPORTED, []).append(line)
    print_past_capture(config, line)


def print_reported(terminalreporter: pytest.TerminalReporter, title: str) -> None:
    """The lines of ``report_line``, again, as a section of the run's summary (call it from a
    ``pytest_terminal_summary`` hook)."""
    lines = terminalreporter.config.stash.get(REPORTED, [])
    if lines:
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)


@contextmanager
def fresh_namespace(cluster: Cluster, test_name: str) -> Iterator[str]:
    """A namespace named after the test, with its default ServiceAccount; deleted afterwards
    (without waiting)."""
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower().removeprefix("test_"))
    name = f"{base[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    cluster.wait_until(
        f"the default ServiceAccount in namespace {name}",
        lambda: cluster.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
        timeout=30,
    )
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
