"""One change to environment files, landed as one commit: validate first, then write and commit.

Every command that edits environment files goes through `land`: the new file contents are
rendered with helm and validated while still in memory, so that a refusal leaves the work tree
exactly as it was; only then are the files written and one commit made (delivery.py puts it on
a branch, pushes it and opens a pull request if asked, and resets the tree if the commit
fails). `--dry-run` stops after printing the diff and the validation result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .context import Context
from .delivery import deliver
from .environments import Environment
from .errors import GitopsError
from .gitrepo import CommitMessage
from .render import render_and_validate
from .yamldoc import YamlDoc


@dataclass
class Landed:
    sha: str | None
    branch: str | None
    diff: str
    pull_request: str | None = None
    rendered_envs: list[str] = field(default_factory=list)


def land(
    ctx: Context,
    docs: Sequence[YamlDoc],
    render_envs: Sequence[Environment],
    message: CommitMessage,
    what: str,
) -> Landed:
    message = message.annotated(ctx.annotation)
    changed = [d for d in docs if d.changes]
    if not changed:
        raise GitopsError(f"nothing to {what}: the files already say so")
    new_texts = {d.path: d.new_text() for d in changed}
    diff = "".join(d.diff(new_texts[d.path]) for d in changed)
    repo, out = ctx.repo, ctx.out
    rendered = [e.name for e in render_envs]

    if not ctx.dry_run:
        repo.require_clean(what)

    for env in render_envs:
        render_and_validate(env, new_texts, helm=ctx.helm)

    if ctx.dry_run:
        out(diff.rstrip("\n"))
        out("")
        out(f"dry run: the change renders and validates for {_names(render_envs)}; ")
        out("nothing was written. The commit would say:")
        out("")
        out(message.text().rstrip("\n"))
        return Landed(None, ctx.delivery.branch, diff, rendered_envs=rendered)

    def commit() -> str:
        for path, text in new_texts.items():
            path.write_text(text, encoding="utf-8")
        rel = [Path(p).relative_to(repo.root).as_posix() for p in new_texts]
        return repo.commit(rel, message)

    def show(_sha: str) -> None:
        out(diff.rstrip("\n"))
        out("")

    delivered = deliver(ctx, message, commit, show)
    return Landed(
        delivered.sha, delivered.branch, diff, delivered.pull_request, rendered_envs=rendered
    )


def _names(envs: Sequence[Environment]) -> str:
    return ", ".join(e.name for e in envs) or "no environment"
