"""Debian's Prometheus for a test, scraping loopback processes labelled as in the cluster.

The binary is ``$NEPSE_PROMETHEUS`` or /usr/bin/prometheus (Debian's ``prometheus`` package,
installed by ``make tools``). It listens on a free loopback port, keeps its TSDB, config and
log (``prometheus.log``) in ``workdir``, and is reloaded through ``/-/reload``.

    from testkit.prometheus import Prometheus, ScrapeTarget, service_monitor_job

    job = service_monitor_job({"stable": ["127.0.0.1:8001"], "canary": ["127.0.0.1:8002"]},
                              namespace="nepse-prod", values_files=[...])
    prom = Prometheus(tmp_path / "prometheus")          # scrape_interval="1s" by default
    prom.start(job)                                     # or [ScrapeTarget("127.0.0.1:9", {...})]
    prom.wait_for_targets_up(timeout=20)
    prom.query('sum(nepse_http_requests_total{track="canary"})')  # [{"metric":..,"value":..}]
    prom.wait_until("up", lambda result: len(result) == 2, timeout=10)
    prom.retarget(other_job)                           # rewrite, reload, wait for the targets
    prom.stop()

API:

- ``ScrapeTarget(address, labels)``: one ``host:port`` and its target labels. Labels starting
  with ``__`` (``__meta_kubernetes_pod_label_...``) exist only while relabelling, as with
  Kubernetes service discovery; the others (``job``, ``namespace`` ...) are kept.
- ``ScrapeJob(name, targets, relabel_configs=(), metric_relabel_configs=(),
  honor_labels=False, metrics_path="/metrics")``: one ``scrape_configs`` entry. ``start`` and
  ``retarget`` take a ScrapeJob, a list of them, or a list of ScrapeTargets (one plain job).
- ``Prometheus(workdir, scrape_interval="1s", evaluation_interval="1s", rule_files=())``:
  ``start(targets)``, ``retarget(targets)``, ``wait_for_targets_up(timeout)``,
  ``query(promql) -> list`` (an instant query; a rejected one raises PrometheusError naming
  the query and Prometheus's error; a scalar comes back as one item without labels),
  ``wait_until(promql, predicate, timeout) -> list``, ``series(match) -> list[dict]``,
  ``targets() -> list[dict]`` (the active ones), ``url``, ``log_path``, ``config_path``,
  ``stop()``; also a context manager. Failures raise ``PrometheusError`` with the log's tail
  or Prometheus's own message.
- ``value(result) -> float | None``: the value of a one-series result.
- ``service_monitor_job(backends_by_track, namespace, values_files=(), values=None,
  manifests=None) -> ScrapeJob``: the scrape job the Prometheus Operator makes of the chart's
  ServiceMonitor (see below). ``describe(job)`` is its Prometheus YAML, for printing;
  ``relabel_configs(relabelings)``, ``sanitize_label_name(key)`` and ``render_chart(...)``
  are its parts.

How the ServiceMonitor is translated. The chart is rendered with helm (or ``manifests``, e.g.
an environment rendered by ``nepse_gitops.render.render_env``, are given) with
``metrics.serviceMonitor.enabled=true``. As the operator does, its ``selector`` and
``namespaceSelector`` pick the Services, each endpoint's ``port`` must name a port of the
Service, and the Service's selector picks the Deployment whose pod template labels the pods
(a track's Deployment is the one whose pods carry ``nepse-predictor/track: <track>``).
Each backend of a track becomes a target with the labels the operator's own relabelling gives
it (``namespace``, ``service``, ``pod``, ``container``, ``endpoint``, ``job`` = the Service
name, or its ``jobLabel`` label; ``targetLabels`` and ``podTargetLabels`` copied from the
Service and the pod) plus what Kubernetes service discovery exposes to the user's
relabelings (``__meta_kubernetes_pod_label_<name>`` and ``..._labelpresent_<name>`` with the
name sanitised to ``[a-zA-Z0-9_]``, the same for the Service's labels, the namespace, names
and port). The endpoint's ``relabelings`` and ``metricRelabelings`` (sourceLabels, separator,
targetLabel, regex, modulus, replacement, action) become ``relabel_configs`` and
``metric_relabel_configs``; ``honorLabels`` becomes ``honor_labels``, ``path`` the
``metrics_path``; the job is named ``serviceMonitor/<namespace>/<name>/0`` as the
operator names it. The endpoint's ``interval`` is replaced by the test's ``scrape_interval``.
A Rollout's pods are those of its roles (stable and canary, or active and preview): the
template's labels plus the role's ephemeral metadata, behind the role's Service only (the
controller selects them by pod-template hash). Anything else in the ServiceMonitor (an
unknown endpoint field or selector operator, https) is refused rather than silently ignored.

Timing: Prometheus 2.42 applies new or changed targets at most every 5 s (its discovery and
scrape managers both throttle updates), so ``start`` and ``retarget`` take about 5 s before
the first scrape. Start it while the processes it scrapes are starting.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from testkit.net import free_port
from testkit.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "nepse-predictor"
TOOLS = Path(os.environ.get("NEPSE_TOOLS_DIR", REPO_ROOT / ".tools"))
PROMETHEUS = Path(os.environ.get("NEPSE_PROMETHEUS", "/usr/bin/prometheus"))
# The pod label that names a predictor's track (the chart's selectorLabels with a track).
TRACK_LABEL = "nepse-predictor/track"

# ServiceMonitor RelabelConfig fields (monitoring.coreos.com/v1) -> Prometheus relabel_config.
RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}
ENDPOINT_FIELDS = frozenset(
    {
        "port",
        "path",
        "interval",
        "scrapeTimeout",
        "honorLabels",
        "relabelings",
        "metricRelabelings",
        "scheme",
    }
)


class PrometheusError(RuntimeError):
    """Prometheus refused a query or a configuration, or did not get where it was asked to."""


@dataclass(frozen=True)
class ScrapeTarget:
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[ScrapeTarget, ...]
    relabel_configs: tuple[dict[str, Any], ...] = ()
    metric_relabel_configs: tuple[dict[str, Any], ...] = ()
    honor_labels: bool = False
    metrics_path: str = "/metrics"

    def config(self) -> dict[str, Any]:
        """This job as one entry of Prometheus's ``scrape_configs``."""
        config: dict[str, Any] = {
            "job_name": self.name,
            "honor_labels": self.honor_labels,
            "metrics_path": self.metrics_path,
            "static_configs": [
                {"targets": [t.address], "labels": dict(t.labels)} for t in self.targets
            ],
        }
        if self.relabel_configs:
            config["relabel_configs"] = [dict(c) for c in self.relabel_configs]
        if self.metric_relabel_configs:
            config["metric_relabel_configs"] = [dict(c) for c in self.metric_relabel_configs]
        return config


Targets = ScrapeJob | Sequence[ScrapeJob] | Sequence[ScrapeTarget]


def _jobs(targets: Targets) -> list[ScrapeJob]:
    if isinstance(targets, ScrapeJob):
        return [targets]
    items = list(targets)
    if all(isinstance(t, ScrapeTarget) for t in items):
        return [ScrapeJob("targets", tuple(items))]
    if all(isinstance(t, ScrapeJob) for t in items):
        return items
    raise TypeError("targets: a ScrapeJob, a list of ScrapeJobs or a list of ScrapeTargets")


def describe(targets: Targets) -> str:
    """The scrape configuration of ``targets`` as Prometheus reads it (YAML)."""
    return yaml.safe_dump(
        {"scrape_configs": [job.config() for job in _jobs(targets)]}, sort_keys=False
    )


class Prometheus:
    """One Prometheus server on loopback; see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        rule_files: Sequence[Path] = (),
    ) -> None:
        if not os.access(PROMETHEUS, os.X_OK):
            pytest.fail(
                f"{PROMETHEUS} is missing: run `make tools` (it installs Debian's prometheus "
                "package) or set NEPSE_PROMETHEUS to a prometheus binary",
                pytrace=False,
            )
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rule_files = tuple(Path(f) for f in rule_files)
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._jobs: list[ScrapeJob] = []
        self._client = httpx.Client(base_url=self.url, timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------

    def _write_config(self, targets: Targets) -> None:
        self._jobs = _jobs(targets)
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [job.config() for job in self._jobs],
        }
        if self.rule_files:
            config["rule_files"] = [str(f) for f in self.rule_files]
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, targets: Targets = (), timeout: float = 30.0) -> None:
        """Start with ``targets`` and wait until they are Prometheus's active targets."""
        self._write_config(targets)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={self.config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--storage.tsdb.retention.time=1d",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if self._client.get("/-/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise PrometheusError(f"prometheus not ready within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)
        self._wait_for_active(deadline - time.monotonic())

    def retarget(self, targets: Targets, timeout: float = 30.0) -> None:
        """Rewrite the configuration, reload it, and wait until the new targets are active."""
        self._write_config(targets)
        response = self._client.post("/-/reload")
        if response.status_code != 200:
            raise PrometheusError(f"prometheus refused the new configuration: {response.text}")
        self._wait_for_active(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- targets --------------------------------------------------------------------------

    def _expected(self) -> list[tuple[str, str]]:
        return sorted(
            (job.name, f"http://{t.address}{job.metrics_path}")
            for job in self._jobs
            for t in job.targets
        )

    def targets(self) -> list[dict[str, Any]]:
        """Prometheus's active targets (``/api/v1/targets``)."""
        return self._api("/api/v1/targets", {"state": "active"})["activeTargets"]

    def _wait_for_active(self, timeout: float) -> None:
        expected = self._expected()
        deadline = time.monotonic() + timeout
        seen: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            seen = sorted((t["scrapePool"], t["scrapeUrl"]) for t in self.targets())
            if seen == expected:
                return
            time.sleep(0.1)
        raise PrometheusError(
            f"the active targets are {seen}, not {expected} after {timeout}s "
            f"(relabelling may have dropped some: see {self.config_path})"
        )

    def wait_for_targets_up(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Wait until every configured target has been scraped successfully; returns them."""
        expected = self._expected()
        deadline = time.monotonic() + timeout
        active: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            active = self.targets()
            up = sorted((t["scrapePool"], t["scrapeUrl"]) for t in active if t["health"] == "up")
            if up == expected:
                return active
            time.sleep(0.1)
        state = ", ".join(
            f"{t['scrapeUrl']} {t['health']} {t['lastError']}".strip() for t in active
        )
        raise PrometheusError(f"targets not all up after {timeout}s: {state or 'none active'}")

    # --- queries --------------------------------------------------------------------------

    def _api(self, path: str, params: Mapping[str, str | list[str]]) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach prometheus at {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"{path}: HTTP {response.status_code} without JSON: {response.text[:200]}"
            ) from None
        if body.get("status") != "success":
            raise PrometheusError(
                f"{path} {dict(params)}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query: ``[{"metric": {...}, "value": [time, "value"]}, ...]``."""
        try:
            data = self._api("/api/v1/query", {"query": promql})
        except PrometheusError as exc:
            raise PrometheusError(f"prometheus rejected {promql!r}: {exc}") from None
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def wait_until(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Repeat ``query(promql)`` until ``predicate(result)``; returns that result."""
        deadline = time.monotonic() + timeout
        result = self.query(promql)
        while not predicate(result):
            if time.monotonic() > deadline:
                raise PrometheusError(f"{promql!r} still gives {result} after {timeout}s")
            time.sleep(0.2)
            result = self.query(promql)
        return result

    def series(self, match: str) -> list[dict[str, str]]:
        """The label sets of every stored series matching ``match`` (``/api/v1/series``)."""
        return self._api("/api/v1/series", {"match[]": match})


def value(result: list[dict[str, Any]]) -> float | None:
    """The value of a one-item query result (None when it is empty)."""
    if not result:
        return None
    if len(result) > 1:
        raise PrometheusError(f"expected one series, got {len(result)}: {result}")
    return float(result[0]["value"][1])


# --- the chart's ServiceMonitor, as the Prometheus Operator turns it into a scrape job -------


def sanitize_label_name(name: str) -> str:
    """A Kubernetes label key as a Prometheus label name (Kubernetes service discovery)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def relabel_configs(relabelings: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """ServiceMonitor ``relabelings`` as Prometheus ``relabel_configs`` (the operator's way:
    the same fields, snake-cased, the action lower-cased)."""
    out = []
    for relabeling in relabelings:
        unknown = sorted(set(relabeling) - set(RELABEL_FIELDS))
        if unknown:
            raise PrometheusError(f"relabeling {dict(relabeling)}: unknown field(s) {unknown}")
        config = {RELABEL_FIELDS[k]: v for k, v in relabeling.items()}
        if "action" in config:
            config["action"] = str(config["action"]).lower()
        out.append(config)
    return tuple(out)


def _helm() -> str:
    configured = os.environ.get("NEPSE_HELM")
    if configured:
        return configured
    pinned = TOOLS / "bin" / "helm4"
    if os.access(pinned, os.X_OK):
        return str(pinned)
    found = shutil.which("helm")
    if found:
        return found
    pytest.fail(f"{pinned} is missing: run `make tools` to install the pinned helm", pytrace=False)


def render_chart(
    namespace: str,
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    release: str = "nepse-predictor",
) -> list[dict[str, Any]]:
    """Every manifest of the chart rendered with ``helm template`` and the ServiceMonitor on."""
    with tempfile.TemporaryDirectory(prefix="nepse-prometheus-") as tmp:
        extra = Path(tmp) / "values.yaml"
        extra.write_text(yaml.safe_dump(dict(values or {})))
        args = [_helm(), "template", release, str(CHART), "--namespace", namespace]
        for path in (*values_files, extra):
            args += ["--values", str(path)]
        args += ["--set", "metrics.serviceMonitor.enabled=true"]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise PrometheusError(f"helm template failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PrometheusError(f"selector {dict(selector)}: operator {op!r} is not translated")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


@dataclass(frozen=True)
class _Workload:
    """The pods of one Deployment, or of one role of a Rollout: a Rollout's roles share one
    template, and the controller adds each role's labels and points the role's Service at it
    (by pod-template hash), so ``service`` names the one Service that selects them."""

    name: str
    template: Mapping[str, Any]
    service: str | None

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.template["metadata"].get("labels") or {})


def _rollout_roles(rollout: Mapping[str, Any]) -> list[_Workload]:
    strategy = rollout["spec"]["strategy"]
    name = rollout["metadata"]["name"]
    template = rollout["spec"]["template"]
    if "blueGreen" in strategy:
        s = strategy["blueGreen"]
        roles = [("activeMetadata", "activeService"), ("previewMetadata", "previewService")]
    else:
        s = strategy["canary"]
        roles = [("stableMetadata", "stableService"), ("canaryMetadata", "canaryService")]
    out = []
    for metadata, service in roles:
        labels = {**(template["metadata"].get("labels") or {}), **s[metadata]["labels"]}
        role_template = {**template, "metadata": {**template["metadata"], "labels": labels}}
        out.append(_Workload(f"{name}-{labels[TRACK_LABEL]}", role_template, s[service]))
    return out


def _meta(prefix: str, labels: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key, val in labels.items():
        out[f"__meta_kubernetes_{prefix}_label_{sanitize_label_name(key)}"] = str(val)
        out[f"__meta_kubernetes_{prefix}_labelpresent_{sanitize_label_name(key)}"] = "true"
    return out


def service_monitor_job(
    backends_by_track: Mapping[str, Sequence[str]],
    namespace: str,
    values_files: Sequence[Path] = (),
    values: Mapping[str, Any] | None = None,
    manifests: Sequence[Mapping[str, Any]] | None = None,
) -> ScrapeJob:
    """The scrape job the Prometheus Operator makes of the chart's ServiceMonitor, with
    ``backends_by_track`` (``{"canary": ["127.0.0.1:8002", ...]}``) as the pods of each
    track's Deployment. ``manifests``: already rendered documents (default: render the chart
    in ``namespace`` with ``values_files`` and ``values``)."""
    docs = (
        list(manifests) if manifests is not None else render_chart(namespace, values_files, values)
    )
    monitors = [d for d in docs if d.get("kind") == "ServiceMonitor"]
    if len(monitors) != 1:
        raise PrometheusError(
            f"expected one ServiceMonitor in the rendered chart, found {len(monitors)} "
            "(is metrics.serviceMonitor.enabled on?)"
        )
    monitor = monitors[0]
    spec = monitor["spec"]
    own_ns = monitor["metadata"].get("namespace", namespace)
    ns_selector = spec.get("namespaceSelector") or {}
    namespaces = None if ns_selector.get("any") else set(ns_selector.get("matchNames") or [own_ns])
    if len(spec.get("endpoints") or []) != 1:
        raise PrometheusError(f"expected one ServiceMonitor endpoint, got {spec.get('endpoints')}")
    endpoint = spec["endpoints"][0]
    unknown = sorted(set(endpoint) - ENDPOINT_FIELDS)
    if unknown or endpoint.get("scheme", "http") != "http":
        raise PrometheusError(f"ServiceMonitor endpoint {endpoint}: not translated: {unknown}")
    services = [
        d
        for d in docs
        if d.get("kind") == "Service"
        and (namespaces is None or d["metadata"].get("namespace", namespace) in namespaces)
        and _selects(spec["selector"], d["metadata"].get("labels") or {})
    ]
    workloads = [
        _Workload(d["metadata"]["name"], d["spec"]["template"], None)
        for d in docs
        if d.get("kind") == "Deployment"
    ]
    workloads += [w for d in docs if d.get("kind") == "Rollout" for w in _rollout_roles(d)]
    targets: list[ScrapeTarget] = []
    for track, addresses in backends_by_track.items():
        matched = []
        for service in services:
            ports = {p.get("name") for p in service["spec"].get("ports", [])}
            selector = service["spec"].get("selector") or {}
            for deployment in workloads:
                pod_labels = deployment.pod_labels
                if not selector or not _selects({"matchLabels": selector}, pod_labels):
                    continue
                if deployment.service not in (None, service["metadata"]["name"]):
                    continue
                if pod_labels.get(TRACK_LABEL) != track:
                    continue
                if endpoint["port"] not in ports:
                    raise PrometheusError(
                        f"ServiceMonitor endpoint port {endpoint['port']!r} is not a "
                        f"port of Service {service['metadata']['name']} ({ports})"
                    )
                matched.append((service, deployment, pod_labels))
        if len(matched) != 1:
            raise PrometheusError(
                f"the ServiceMonitor selects {len(matched)} Service(s) of track {track!r} "
                f"(expected exactly one): {[s['metadata']['name'] for s, _, _ in matched]}"
            )
        service, deployment, pod_labels = matched[0]
        svc_name = service["metadata"]["name"]
        svc_labels = service["metadata"].get("labels") or {}
        job = svc_name
        if spec.get("jobLabel") and svc_labels.get(spec["jobLabel"]):
            job = svc_labels[spec["jobLabel"]]
        container = deployment.template["spec"]["containers"][0]["name"]
        for i, address in enumerate(addresses):
            pod = f"{deployment.name}-{i}"
            labels = {
                "__meta_kubernetes_namespace": namespace,
                "__meta_kubernetes_service_name": svc_name,
                "__meta_kubernetes_pod_name": pod,
                "__meta_kubernetes_pod_container_name": container,
                "__meta_kubernetes_endpoint_port_name": endpoint["port"],
                "__meta_kubernetes_pod_ready": "true",
                **_meta("service", svc_labels),
                **_meta("pod", pod_labels),
                # The operator's own relabelling, before the endpoint's relabelings:
                "namespace": namespace,
                "service": svc_name,
                "pod": pod,
                "container": container,
                "endpoint": endpoint["port"],
                "job": job,
            }
            for key in spec.get("targetLabels") or []:
                if key in svc_labels:
                    labels[sanitize_label_name(key)] = svc_labels[key]
            for key in spec.get("podTargetLabels") or []:
                if key in pod_labels:
                    labels[sanitize_label_name(key)] = pod_labels[key]
            targets.append(ScrapeTarget(address, labels))
    return ScrapeJob(
        name=f"serviceMonitor/{own_ns}/{monitor['metadata']['name']}/0",
        targets=tuple(targets),
        relabel_configs=relabel_configs(endpoint.get("relabelings") or []),
        metric_relabel_configs=relabel_configs(endpoint.get("metricRelabelings") or []),
        honor_labels=bool(endpoint.get("honorLabels", False)),
        metrics_path=endpoint.get("path", "/metrics"),
    )


@contextmanager
def scraped_canary(model_dir: Path, workdir: Path, namespace: str = "nepse-prod") -> Iterator[str]:
    """A real server of ``model_dir`` answering as ``namespace``'s canary, scraped by a real
    Prometheus with the labels the chart's ServiceMonitor gives it; yields Prometheus's URL.
    The gate then finds the candidate scraped, with its model version, before any request."""
    from testkit.service import ServiceProcess

    canary = ServiceProcess("canary", model_dir, "canary", workdir)
    prometheus = Prometheus(workdir / "prometheus")
    slots = {track: {"imageTag": "0.1.0", "modelVersion": "v"} for track in ("stable", "canary")}
    values = {"slots": slots, "rollout": {"strategy": "canary"}}
    try:
        prometheus.start(
            service_monitor_job({"canary": [canary.address]}, namespace, values=values)
        )
        canary.wait()
        prometheus.wait_for_targets_up(timeout=30)
        yield prometheus.url
    finally:
        prometheus.stop()
        canary.stop()
