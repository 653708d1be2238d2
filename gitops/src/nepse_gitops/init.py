"""`nepse-gitops init`: make a copy of this repository deploy itself, in one commit.

A copy starts out pointing at the upstream project: every `repoURL` and `sourceRepos` entry
under argocd/ names the upstream repository, and the environments pull the upstream image and
model releases. `init --repo-url URL` replaces the repository URL everywhere Argo CD reads it
(only where it is the one the bootstrap Application names, so other sources are left alone);
`--image-repository` and `--model-url-base` do the same for every environment's values.yaml.
The result renders and validates for every environment before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .change import Landed, land
from .context import Context
from .environments import ENVIRONMENTS_DIR, list_environments, load_environment
from .errors import GitopsError, UsageError
from .gitrepo import CommitMessage
from .yamldoc import Change, YamlDoc

ARGOCD_DIR = Path("argocd")
BOOTSTRAP_APP = ARGOCD_DIR / "bootstrap" / "root-app.yaml"
# What Argo CD accepts as a git repository: a URL with one of these schemes, or scp-like
# `user@host:path`. No whitespace or control characters anywhere.
_REPO_URL = re.compile(
    r"^(?:(?:https?|ssh|git)://[A-Za-z0-9.\[\]:_-]+(?::[0-9]{1,5})?/[!-~]+"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[!-~]+)$"
)
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.\[\]:_-]+(?::[0-9]{1,5})?(?:/[!-~]*)?$")


@dataclass(frozen=True)
class InitRequest:
    repo_url: str
    image_repository: str | None = None
    model_url_base: str | None = None


def check_request(req: InitRequest) -> None:
    if not _REPO_URL.match(req.repo_url):
        raise UsageError(
            f"--repo-url {req.repo_url!r}: not a git URL Argo CD can clone "
            "(https://, http://, ssh:// or git:// with a host and path, or user@host:path)"
        )
    if req.model_url_base is not None and not _HTTP_URL.match(req.model_url_base):
        raise UsageError(
            f"--model-url-base {req.model_url_base!r}: expected an http:// or https:// URL "
            "without spaces"
        )
    if req.model_url_base is not None and req.model_url_base.endswith("/"):
        raise UsageError(f"--model-url-base {req.model_url_base!r}: drop the trailing '/'")


def current_repo_url(root: Path) -> str:
    doc = YamlDoc.load(root / BOOTSTRAP_APP, BOOTSTRAP_APP.as_posix())
    url = doc.get(("spec", "source", "repoURL"), None)
    if not isinstance(url, str) or not url:
        raise GitopsError(f"{BOOTSTRAP_APP}: spec.source.repoURL is missing")
    return str(url)


def _repo_url_places(
    node: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[Any, Any, tuple[str, ...]]]:
    """(container, key or index, path) of every `repoURL` value and `sourceRepos` entry."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "repoURL" and isinstance(value, str):
                yield node, key, (*path, key)
            elif key == "sourceRepos" and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, str):
                        yield value, i, (*path, key, str(i))
            else:
                yield from _repo_url_places(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _repo_url_places(item, (*path, str(i)))


def _point_argocd_at(root: Path, old: str, new: str) -> list[YamlDoc]:
    if old == new:
        return []
    docs = []
    for path in sorted((root / ARGOCD_DIR).rglob("*.yaml")):
        doc = YamlDoc.load(path, path.relative_to(root).as_posix())
        for container, key, where in _repo_url_places(doc.data):
            if str(container[key]) == old:
                # The same string type keeps the value's quoting style.
                container[key] = type(container[key])(new)
                doc.changes.append(Change(where, old, new))
        if doc.changes:
            docs.append(doc)
    return docs


def init(ctx: Context, req: InitRequest) -> Landed:
    root = ctx.root
    check_request(req)
    old_url = current_repo_url(root)
    docs = _point_argocd_at(root, old_url, req.repo_url)
    names = list_environments(root)
    for name in names:
        display = (ENVIRONMENTS_DIR / name / "values.yaml").as_posix()
        doc = YamlDoc.load(root / display, display)
        if req.image_repository is not None:
            doc.set(("image", "repository"), req.image_repository)
        if req.model_url_base is not None:
            doc.set(("model", "url", "base"), req.model_url_base)
        if doc.changes:
            docs.append(doc)

    what = [f"repoURL {req.repo_url}"]
    if req.image_repository is not None:
        what.append(f"image {req.image_repository}")
    if req.model_url_base is not None:
        what.append(f"models {req.model_url_base}")
    message = CommitMessage(
        f"init: {', '.join(what)}",
        "Point Argo CD's sources (argocd/) at this repository"
        + (" and the environments at their image and model store" if len(what) > 1 else "")
        + f".\n\nPrevious repoURL: {old_url}",
        [("Nepse-Env", "all"), ("Nepse-Action", "init"), ("Nepse-Repo-URL", req.repo_url)],
    )
    envs = [load_environment(root, name) for name in names]
    return land(ctx, docs, envs, message, "init")
