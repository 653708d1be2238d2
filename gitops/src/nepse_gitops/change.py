"""One change to environment files, landed as one commit: validate first, then write and commit.

Every command that edits environment files goes through `land`: the new file contents are
rendered with helm and validated while still in memory, so that a refusal leaves the work tree
exactly as it was; only then are the files written, a branch created if asked, and one commit
made. `--dry-run` stops after printing the diff and the validation result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .environments import Environment
from .errors import GitopsError
from .gitrepo import Annotation, CommitMessage, GitRepo, open_pull_request
from .render import render_and_validate
from .yamldoc import YamlDoc

Printer = Callable[[str], None]


@dataclass
class Delivery:
    """Where the commit goes: the current branch, or a new one; optionally pushed and a PR."""

    branch: str | None = None
    push: bool = False
    pull_request: bool = False
    remote: str = "origin"
    base: str | None = None


@dataclass
class Landed:
    sha: str | None
    branch: str | None
    diff: str
    pull_request: str | None = None
    rendered_envs: list[str] = field(default_factory=list)


def land(
    repo: GitRepo,
    docs: Sequence[YamlDoc],
    render_envs: Sequence[Environment],
    message: CommitMessage,
    delivery: Delivery,
    dry_run: bool,
    out: Printer,
    what: str,
    helm: str | None = None,
    annotation: Annotation | None = None,
) -> Landed:
    message = message.annotated(annotation)
    changed = [d for d in docs if d.changes]
    if not changed:
        raise GitopsError(f"nothing to {what}: the files already say so")
    new_texts = {d.path: d.new_text() for d in changed}
    diff = "".join(d.diff(new_texts[d.path]) for d in changed)

    if not dry_run:
        repo.require_clean(what)

    for env in render_envs:
        render_and_validate(env, new_texts, helm=helm)

    if dry_run:
        out(diff.rstrip("\n"))
        out("")
        out(f"dry run: the change renders and validates for {_names(render_envs)}; ")
        out("nothing was written. The commit would say:")
        out("")
        out(message.text().rstrip("\n"))
        return Landed(None, delivery.branch, diff, rendered_envs=[e.name for e in render_envs])

    start_branch = repo.current_branch()
    start_head = repo.head()
    if delivery.branch:
        repo.create_branch(delivery.branch)
    try:
        for path, text in new_texts.items():
            path.write_text(text, encoding="utf-8")
        rel = [Path(p).relative_to(repo.root).as_posix() for p in new_texts]
        sha = repo.commit(rel, message)
    except BaseException:
        repo.run("reset", "--quiet", "--hard", start_head)
        if delivery.branch and start_branch:
            repo.switch(start_branch)
            repo.delete_branch(delivery.branch)
        raise

    branch = repo.current_branch()
    out(diff.rstrip("\n"))
    out("")
    out(f"committed {sha[:12]} on {branch or 'detached HEAD'}: {message.subject}")
    landed = Landed(sha, branch, diff, rendered_envs=[e.name for e in render_envs])
    if delivery.push or delivery.pull_request:
        if not branch:
            raise GitopsError("cannot push from a detached HEAD; pass --branch")
        repo.push(delivery.remote, branch)
        out(f"pushed {branch} to {delivery.remote}")
    if delivery.pull_request:
        base = delivery.base or start_branch or "main"
        if base == branch:
            raise GitopsError(
                f"cannot open a pull request from {branch!r} into itself; pass --branch"
            )
        landed.pull_request = open_pull_request(repo, branch, base, message)
        out(f"opened pull request: {landed.pull_request}")
    return landed


def _names(envs: Sequence[Environment]) -> str:
    return ", ".join(e.name for e in envs) or "no environment"
