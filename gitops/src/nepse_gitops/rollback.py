"""`nepse-gitops rollback`: undo the last promotion or step of an environment with git revert.

The commits are found by their trailers (``Nepse-Env``, ``Nepse-Action``). A commit already
undone (named in a later rollback's ``Nepse-Reverts`` trailer, or in git's own "This reverts
commit" line) is skipped, so running rollback again walks one more step back.

``--release`` undoes the whole release in flight (every step back to and including the
promotion or shadow start) in a single commit; the gate uses it when a candidate fails.
"""

from __future__ import annotations

from .context import Context
from .delivery import deliver
from .environments import ENVIRONMENTS_DIR, load_environment
from .errors import GitopsError
from .gitrepo import (
    RELEASE_ACTIONS,
    RELEASE_END,
    RELEASE_START,
    CommitMessage,
    GitRepo,
    LoggedCommit,
)
from .render import render_and_validate


def live_actions(repo: GitRepo, env: str) -> list[LoggedCommit]:
    """The environment's promotion and step commits that are still in effect, newest first."""
    commits = repo.log([ENVIRONMENTS_DIR.as_posix()])
    reverted: set[str] = set()
    for commit in commits:
        reverted.update(commit.reverted_shas())
    return [
        c for c in commits if c.env == env and c.action in RELEASE_ACTIONS and c.sha not in reverted
    ]


def flipped_since_promote(repo: GitRepo, env: str) -> bool:
    """blueGreen: whether the live history has a flip after the last promotion or finish."""
    for commit in live_actions(repo, env):
        if commit.action == "flip":
            return True
        if commit.action in ("promote", "finish"):
            return False
    return False


def pick(repo: GitRepo, env: str, release: bool) -> list[LoggedCommit]:
    actions = live_actions(repo, env)
    if not actions:
        raise GitopsError(
            f"nothing to roll back in {env}: no promotion or step commit for it is in effect "
            "(commits are found by their Nepse-Env and Nepse-Action trailers)"
        )
    if not release:
        return actions[:1]
    picked: list[LoggedCommit] = []
    for commit in actions:
        if commit.action in RELEASE_END:
            break
        picked.append(commit)
        if commit.action in RELEASE_START:
            return picked
    last = actions[0]
    raise GitopsError(
        f"no release in flight in {env}: the last step is {last.subject!r} "
        f"({last.sha[:12]}); `nepse-gitops rollback --env {env}` undoes that step alone"
    )


def rollback(ctx: Context, env_name: str, release: bool, reason: str | None) -> str | None:
    """Revert the environment's last step (``release``: the whole release in flight) in one
    commit; returns it (None with --dry-run)."""
    env = load_environment(ctx.root, env_name)
    repo, out = ctx.repo, ctx.out
    targets = pick(repo, env.name, release)
    if ctx.dry_run:
        out(f"dry run: would revert in {env.name}:")
        for commit in targets:
            out(f"  {commit.sha[:12]} {commit.subject}")
        out(repo.run("show", "--stat", "--format=", *[c.sha for c in targets]).rstrip())
        return None
    repo.require_clean(f"roll back {env.name}")

    own_env = f"{ENVIRONMENTS_DIR.as_posix()}/{env.name}/"
    for commit in targets:
        foreign = [p for p in repo.changed_files(commit.sha) if not p.startswith(own_env)]
        if foreign:
            raise GitopsError(
                f"refusing to revert {commit.sha[:12]} ({commit.subject!r}): it also changes "
                f"{', '.join(foreign)}, outside {own_env}; revert it by hand"
            )
    message = _message(env.name, targets, reason).annotated(ctx.annotation)

    def revert() -> str:
        repo.revert_no_commit([c.sha for c in targets])
        render_and_validate(env, helm=ctx.helm)
        return repo.commit_staged(message)

    def show(sha: str) -> None:
        out(repo.run("show", "--stat", "--format=", sha).rstrip())

    return deliver(ctx, message, revert, show, undo=repo.abort_revert).sha


def _message(env: str, targets: list[LoggedCommit], reason: str | None) -> CommitMessage:
    if len(targets) == 1:
        subject = f"rollback({env}): revert {targets[0].subject}"
    else:
        subject = f"rollback({env}): revert the release in flight ({len(targets)} commits)"
    lines = ["Undo, with git revert:"]
    lines += [f"  {c.sha[:12]} {c.subject}" for c in targets]
    if reason:
        lines += ["", f"Reason: {reason}"]
    trailers = [("Nepse-Env", env), ("Nepse-Action", "rollback")]
    trailers += [("Nepse-Reverts", c.sha) for c in targets]
    if reason:
        trailers.append(("Nepse-Reason", " ".join(reason.split())))
    return CommitMessage(subject, "\n".join(lines), trailers)
