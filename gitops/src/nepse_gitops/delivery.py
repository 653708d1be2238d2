"""Every commit the tool makes is delivered here: on the current branch or a new one, then
pushed and a pull request opened when asked.

The commit itself is the caller's (`land` writes files it has rendered and validated,
`rollback` reverts); if making it fails, the branch and the work tree are put back as they
were. What cannot work (a push from a detached HEAD, a pull request from a branch into
itself) is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .context import Context
from .errors import GitopsError
from .gitrepo import CommitMessage, open_pull_request


@dataclass
class Delivered:
    sha: str
    branch: str | None
    pull_request: str | None = None


def deliver(
    ctx: Context,
    message: CommitMessage,
    commit: Callable[[], str],
    show: Callable[[str], None],
    undo: Callable[[], None] | None = None,
) -> Delivered:
    """Make the commit with ``commit`` (returns its sha) where ``ctx.delivery`` says, print
    it with ``show`` and the "committed" line, then push and open the pull request if asked.
    ``undo`` runs first when ``commit`` fails (for example to abort a revert)."""
    repo, delivery, out = ctx.repo, ctx.delivery, ctx.out
    start_branch = repo.current_branch()
    branch = delivery.branch or start_branch
    base = delivery.base or start_branch or "main"
    if (delivery.push or delivery.pull_request) and not branch:
        raise GitopsError("cannot push from a detached HEAD; pass --branch")
    if delivery.pull_request and base == branch:
        raise GitopsError(f"cannot open a pull request from {branch!r} into itself; pass --branch")

    start_head = repo.head()
    if delivery.branch:
        repo.create_branch(delivery.branch)
    try:
        sha = commit()
    except BaseException:
        if undo is not None:
            undo()
        repo.run("reset", "--quiet", "--hard", start_head)
        if delivery.branch and start_branch:
            repo.switch(start_branch)
            repo.delete_branch(delivery.branch)
        raise

    branch = repo.current_branch()
    show(sha)
    out(f"committed {sha[:12]} on {branch or 'detached HEAD'}: {message.subject}")
    delivered = Delivered(sha, branch)
    if delivery.push or delivery.pull_request:
        if not branch:
            raise GitopsError("cannot push from a detached HEAD; pass --branch")
        repo.push(delivery.remote, branch)
        out(f"pushed {branch} to {delivery.remote}")
    if delivery.pull_request:
        assert branch is not None
        delivered.pull_request = open_pull_request(repo, branch, base, message)
        out(f"opened pull request: {delivered.pull_request}")
    return delivered
