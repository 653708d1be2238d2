"""Render an environment with helm exactly as Argo CD will, and check the result.

helm is taken from ``$NEPSE_HELM``, else ``<repo>/.tools/bin/helm``, else ``helm`` on PATH.
The command is the one Argo CD's repo server runs for the environment's Application::

    helm template nepse-predictor charts/nepse-predictor --namespace nepse-<env> \
        --values environments/<env>/values.yaml --values environments/<env>/release.yaml \
        --values environments/quarantine.yaml
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .environments import RELEASE_NAME, Environment
from .errors import GitopsError
from .state import EnvState, env_state
from .yamldoc import load_plain

PROJECT_FILE = Path("argocd/apps/project.yaml")

# Kinds that are cluster-scoped (everything else the chart renders is namespaced).
CLUSTER_SCOPED = {
    ("", "Namespace"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"),
}


def find_helm(root: Path) -> str:
    configured = os.environ.get("NEPSE_HELM")
    if configured:
        if not Path(configured).is_file():
            raise GitopsError(f"NEPSE_HELM points at {configured}, which does not exist")
        return configured
    local = root / ".tools" / "bin" / "helm"
    if local.is_file():
        return str(local)
    found = shutil.which("helm")
    if found:
        return found
    raise GitopsError(
        "helm not found: set NEPSE_HELM, install it into .tools/bin/helm, or put helm on PATH"
    )


@dataclass
class Rendered:
    env: str
    command: list[str]
    text: str
    docs: list[dict[str, Any]] = field(default_factory=list)


def helm_template_args(
    helm: str,
    chart: Path,
    namespace: str,
    value_files: Sequence[Path],
    release: str = RELEASE_NAME,
    kube_version: str | None = None,
    api_versions: Sequence[str] = (),
    include_crds: bool = False,
) -> list[str]:
    args = [helm, "template", release, str(chart), "--namespace", namespace]
    for path in value_files:
        args += ["--values", str(path)]
    if kube_version:
        args += ["--kube-version", kube_version]
    for api in api_versions:
        args += ["--api-versions", api]
    if include_crds:
        args.append("--include-crds")
    return args


def run_helm(args: list[str], what: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise GitopsError(f"helm could not render {what}:\n{detail}")
    return proc.stdout


def parse_manifests(text: str, what: str) -> list[dict[str, Any]]:
    try:
        docs = [d for d in YAML(typ="safe", pure=True).load_all(text) if d]
    except YAMLError as exc:
        raise GitopsError(f"{what}: helm produced output that is not valid YAML: {exc}") from exc
    return docs


def render_env(
    env: Environment,
    overrides: dict[Path, str] | None = None,
    helm: str | None = None,
    kube_version: str | None = None,
    api_versions: Sequence[str] = (),
) -> Rendered:
    """Render an environment; `overrides` replaces file contents without touching the tree."""
    helm = helm or find_helm(env.root)
    overrides = overrides or {}
    with tempfile.TemporaryDirectory(prefix="nepse-render-") as tmp:
        files = []
        for i, path in enumerate(env.value_files()):
            if path in overrides:
                tmp_path = Path(tmp) / f"{i}-{path.name}"
                tmp_path.write_text(overrides[path], encoding="utf-8")
                files.append(tmp_path)
            elif path.is_file():
                files.append(path)
            else:
                raise GitopsError(f"{env.rel(path)} is missing; every render needs it")
        args = helm_template_args(
            helm,
            env.chart_dir,
            env.namespace,
            files,
            kube_version=kube_version,
            api_versions=api_versions,
        )
        text = run_helm(args, f"environment {env.name!r}")
    docs = parse_manifests(text, f"environment {env.name!r}")
    return Rendered(env.name, args, text, docs)


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def allowed_kinds(root: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]]] | None:
    path = root / PROJECT_FILE
    if not path.is_file():
        return None
    project = load_plain(path, PROJECT_FILE.as_posix()) or {}
    spec = project.get("spec") or {}

    def kinds(key: str) -> set[tuple[str, str]]:
        return {(str(e.get("group", "")), str(e.get("kind", ""))) for e in spec.get(key) or []}

    return kinds("namespaceResourceWhitelist"), kinds("clusterResourceWhitelist")


def _kind_allowed(group: str, kind: str, allowed: set[tuple[str, str]]) -> bool:
    return any(g in ("*", group) and k in ("*", kind) for g, k in allowed)


def validate(rendered: Rendered, env: Environment, state: EnvState) -> list[str]:
    """Problems that would make the render fail to sync or run the wrong thing."""
    problems: list[str] = []
    if not rendered.docs:
        return [f"{env.name}: helm rendered no manifests"]
    project_kinds = allowed_kinds(env.root)
    for doc in rendered.docs:
        kind = doc.get("kind")
        api = doc.get("apiVersion")
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        if not kind or not api or not name:
            problems.append(f"{env.name}: a manifest lacks apiVersion, kind or metadata.name")
            continue
        group = _group(str(api))
        ns = meta.get("namespace")
        if ns and ns != env.namespace:
            problems.append(
                f"{env.name}: {kind}/{name} is in namespace {ns!r}, outside {env.namespace!r}"
            )
        if project_kinds is not None:
            namespaced, cluster = project_kinds
            allowed = cluster if (group, kind) in CLUSTER_SCOPED else namespaced
            if not _kind_allowed(group, kind, allowed):
                problems.append(
                    f"{env.name}: {kind}/{name} (group {group or 'core'!r}) is not allowed by "
                    f"the AppProject in {PROJECT_FILE}; Argo CD would refuse to sync it"
                )
    images, text = _pod_images(rendered.docs), rendered.text
    for slot, version in state.rendered_slots().items():
        if version.image_tag and not any(img.endswith(f":{version.image_tag}") for img in images):
            problems.append(
                f"{env.name}: slot {slot} pins image tag {version.image_tag!r}, "
                "but no rendered container uses it"
            )
        if version.model_version and version.model_version not in text:
            problems.append(
                f"{env.name}: slot {slot} pins model {version.model_version!r}, "
                "but the rendered manifests never mention it"
            )
    return problems


def _pod_images(docs: list[dict[str, Any]]) -> list[str]:
    images: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("containers", "initContainers") and isinstance(value, list):
                    images.extend(str(c.get("image", "")) for c in value if isinstance(c, dict))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(docs)
    return images


def render_and_validate(
    env: Environment, overrides: dict[Path, str] | None = None, helm: str | None = None
) -> Rendered:
    state = env_state(env, overrides)
    rendered = render_env(env, overrides, helm=helm)
    problems = validate(rendered, env, state)
    if problems:
        raise GitopsError(
            f"the rendered manifests of {env.name!r} fail validation:\n  " + "\n  ".join(problems)
        )
    return rendered
