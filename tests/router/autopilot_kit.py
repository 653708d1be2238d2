"""Releases driven by `nepse-gitops advance` alone, against real parts: `nepse-predictor serve`
processes per track (each serving a real model), the chart's nginx router rendered from the
environment's files after every commit (what Argo CD would apply), a real Prometheus scraping
the processes with the labels the chart's ServiceMonitor gives them, and a git repository
holding a copy of the environments with a release plan of seconds instead of hours.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from routerkit import HELM, Router

from nepse_gitops.environments import load_environment, merged_values
from testkit.gitrepos import GIT_ENV, commit_all, copy_repository, git
from testkit.redis_server import RedisServer

NEPSE_GITOPS = Path(sys.executable).parent / "nepse-gitops"
IMAGE_TAG = "0.1.0"

# The plan the scenarios walk: the chart's steps, with pauses of seconds and small request
# counts, judged over the time since each step (never further back than `window`).
CANARY_STEPS = [
    {"weight": 5, "pause": "3s", "gate": {"minRequests": 8}},
    {"weight": 25, "pause": "2s"},
    {"weight": 50, "pause": "2s"},
    {"weight": 100, "pause": "2s"},
]
GATE = {
    "minRequests": 20,
    "errorRatio": {"max": 0.01, "maxIncrease": 0.005},
    # Both tracks' p99 counts as at least 150 ms: on a shared, busy machine one request of a
    # few dozen delayed past 100 ms puts a healthy track's p99 in the 0.1-0.25 s bucket of the
    # latency histogram; the slow canary's requests wait up to half a second for its cache.
    "p99Seconds": {"max": 0.25, "maxRatio": 1.5, "ratioFloor": 0.15},
    "prometheus": {"trackLabel": "track", "window": "30s"},
}


def manifest_sha256(model_dir: Path) -> str:
    import hashlib

    return hashlib.sha256((model_dir / "checksums.sha256").read_bytes()).hexdigest()


def model_version(model_dir: Path) -> str:
    return json.loads((model_dir / "metadata.json").read_text())["version"]


def slot(model_dir: Path) -> dict[str, str]:
    return {
        "imageTag": IMAGE_TAG,
        "modelVersion": model_version(model_dir),
        "modelSha256": manifest_sha256(model_dir),
    }


def make_repo(
    root: Path, env: str, namespace: str, prometheus_url: str, slots: dict[str, Path], release
) -> Path:
    """A git repository with a copy of the environments: ``env`` serves ``slots`` (track ->
    model dir; blue-green environments start with blue active), its plan is ``release`` and
    its gate reads ``prometheus_url`` with the selector namespace=``namespace``."""
    copy_repository(root)
    env_dir = root / "environments" / env
    policy = yaml.safe_load((env_dir / "policy.yaml").read_text())
    gate = json.loads(json.dumps(GATE))
    gate["prometheus"].update(url=prometheus_url, selector=f'namespace="{namespace}"')
    policy.update(release=release, gate=gate)
    (env_dir / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    release_file = yaml.safe_load((env_dir / "release.yaml").read_text())
    for name, model_dir in slots.items():
        release_file["slots"][name] = slot(model_dir)
    if "blue" in slots:
        release_file["rollout"]["blueGreen"]["activeColor"] = "blue"
    (env_dir / "release.yaml").write_text(yaml.safe_dump(release_file, sort_keys=False))
    commit_all(root, f"Serve the test models in {env}")
    return root


def gitops(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as a scheduled job runs it."""
    return subprocess.run(
        [str(NEPSE_GITOPS), "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV, "NEPSE_HELM": str(HELM)},
        timeout=120,
    )


def run_gitops(repo: Path, *args: str) -> str:
    result = gitops(repo, *args)
    if result.returncode != 0:
        raise AssertionError(f"nepse-gitops {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class Load:
    """A steady, bounded request loop: single rows and two-row batches to /v1/predict through
    the router (no cookies, so stickiness never pins the loop to one track), and optionally
    the same to a preview address (blue-green's idle colour).

    Each request has a connection of its own: the harness applies a release with `nginx -s
    reload` where a cluster rolls the router's pods, and a reload closes idle keep-alive
    connections under a client that is about to reuse one (a request lost in transit, not
    an answer of the release; the router tier measures reloads with keep-alive clients)."""

    url: str
    body_row: dict[str, float]
    rate: float = 80.0
    preview_url: str | None = None
    statuses: Counter[int] = field(default_factory=Counter)
    user_statuses: Counter[int] = field(default_factory=Counter)  # through the router only
    errors: Counter[str] = field(default_factory=Counter)  # status 0: why no answer came
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _bodies(self) -> list[bytes]:
        return [
            json.dumps({"features": self.body_row}).encode(),
            json.dumps({"instances": [self.body_row, self.body_row]}).encode(),
        ]

    def _worker(self, url: str, rate: float) -> None:
        pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=10)
        bodies = self._bodies()
        interval = 1 / rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            body = random.choice(bodies)
            try:
                response = pool.request(
                    "POST",
                    f"{url}/v1/predict",
                    body=body,
                    headers={"content-type": "application/json", "connection": "close"},
                )
                status = response.status
            except urllib3.exceptions.HTTPError as exc:
                status = 0
                self.errors[f"{url}: {type(exc).__name__}: {exc}"] += 1
            self.statuses[status] += 1
            if url == self.url:
                self.user_statuses[status] += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        workers = [(self.url, self.rate / 4)] * 4
        if self.preview_url:
            workers += [(self.preview_url, self.rate / 4)] * 2
        for url, rate in workers:
            thread = threading.Thread(target=self._worker, args=(url, rate), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


@dataclass
class Release:
    """One environment's release in a repository copy, deployed to a router after each commit."""

    repo: Path
    env: str
    router: Router
    prometheus_url: str
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    started_head: str = ""

    def __post_init__(self) -> None:
        self.started_head = git(self.repo, "rev-parse", "HEAD").strip()

    def router_values(self) -> dict[str, Any]:
        values = merged_values(load_environment(self.repo, self.env))
        return {
            "slots": values["slots"],
            "rollout": values["rollout"],
            "traffic": {"router": values.get("traffic", {}).get("router", {})},
        }

    def deploy(self) -> None:
        """What Argo CD would apply: the router rendered from the environment's files."""
        if self.router.process is None:
            self.router.start(self.router_values())
        else:
            self.router.reload(self.router_values())

    def mark_start(self) -> None:
        """Count commits from here (after the scenario's own setup commits)."""
        self.started_head = git(self.repo, "rev-parse", "HEAD").strip()

    def begin(self, load: Load) -> float:
        """After the scenario's setup commits: count commits from here, deploy, start the
        load; returns the monotonic time the release began."""
        self.mark_start()
        self.deploy()
        load.start()
        return time.monotonic()

    def advance(self) -> dict[str, Any]:
        result = gitops(
            self.repo,
            "advance",
            "--env",
            self.env,
            "--prometheus",
            self.prometheus_url,
            "-o",
            "json",
        )
        if result.returncode not in (0, 1):
            raise AssertionError(f"advance failed ({result.returncode}):\n{result.stderr}")
        outcome = json.loads(result.stdout)
        self.outcomes.append(outcome)
        if outcome["commits"]:
            self.deploy()
        return outcome

    def drive(self, until: tuple[str, ...], timeout: float, every: float = 0.5) -> dict[str, Any]:
        """Run `advance` every ``every`` seconds until its result is one of ``until``."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = self.advance()
            if outcome["result"] in until:
                return outcome
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {'/'.join(until)} within {timeout:.0f}s; the last runs said:\n"
                    + "\n".join(f"  {o['result']}: {o['reason']}" for o in self.outcomes[-5:])
                )
            time.sleep(every)

    def commits(self) -> list[str]:
        """Subjects of the commits since the scenario's start, oldest first."""
        return self.log("%s")

    def log(self, fmt: str) -> list[str]:
        """``git log --format=fmt`` of the commits since the scenario's start, oldest first."""
        out = git(self.repo, "log", "--reverse", f"--format={fmt}", f"{self.started_head}..HEAD")
        return out.splitlines()

    def message(self, rev: str = "HEAD") -> str:
        return git(self.repo, "show", "-s", "--format=%B", rev)


class StalledRedis:
    """Stall a real Redis again and again (SIGSTOP for ``stalled`` seconds, SIGCONT for
    ``running``), as a Redis blocked by slow commands or a fork of a large dataset: a service
    whose cache it is waits for it on every request, up to ``stalled`` seconds."""

    def __init__(self, redis: RedisServer, stalled: float = 0.5, running: float = 0.01) -> None:
        self.redis = redis
        self.stalled = stalled
        self.running = running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._stall, daemon=True)

    def __enter__(self) -> StalledRedis:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.redis.resume()

    def _stall(self) -> None:
        while not self._stop.is_set():
            self.redis.pause()
            self._stop.wait(self.stalled)
            self.redis.resume()
            self._stop.wait(self.running)
