"""Git operations and the structured commit messages that promotion, steps and rollback use.

Every commit the tool makes carries trailers, so that later commands can find it again::

    promote(prod): canary=0.2.0/2026.11.20-ab12cd3 from staging

    <what changed and why>

    Nepse-Env: prod
    Nepse-Action: promote
    Nepse-From: staging
    Nepse-Image-Tag: 0.2.0
    Nepse-Model-Version: 2026.11.20-ab12cd3

A rollback commit lists each commit it undoes in a ``Nepse-Reverts:`` trailer.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GitopsError

# Actions that change what an environment runs (the ones rollback may undo).
RELEASE_ACTIONS = ("promote", "set-weight", "flip", "shadow-start", "shadow-stop", "finish")
# Actions that begin a release that `rollback --release` and the gate undo as a whole.
RELEASE_START = ("promote", "shadow-start")
RELEASE_END = ("finish", "shadow-stop")

_TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):\s*(.*)$")
_REVERTS_BODY = re.compile(r"This reverts commit ([0-9a-f]{40})")
# What git says when a push lost a race with another push to the same branch.
_MOVED_ON = re.compile(
    r"\[rejected\] \((fetch first|non-fast-forward)\)"
    r"|\[remote rejected\] \((failed to update ref|cannot lock ref.*|incorrect old value.*"
    r"|failed to lock|stale info)\)"
)


@dataclass
class Annotation:
    """What a caller adds to a command's commit message: why it was made, as a paragraph and
    trailers (`advance` records the step and the gate's verdict this way)."""

    text: str = ""
    trailers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class CommitMessage:
    subject: str
    body: str = ""
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def annotated(self, note: Annotation | None) -> CommitMessage:
        """This message with ``note``'s paragraph before the trailers and its trailers added."""
        if note is None:
            return self
        body = "\n\n".join(p for p in (self.body.strip(), note.text.strip()) if p)
        return CommitMessage(self.subject, body, [*self.trailers, *note.trailers])

    def text(self) -> str:
        parts = [self.subject.strip()]
        if self.body.strip():
            parts.append(self.body.strip())
        if self.trailers:
            parts.append("\n".join(f"{k}: {v}" for k, v in self.trailers))
        return "\n\n".join(parts) + "\n"


@dataclass
class LoggedCommit:
    sha: str
    subject: str
    body: str
    trailers: dict[str, list[str]]

    def trailer(self, key: str) -> str | None:
        values = self.trailers.get(key.lower())
        return values[0] if values else None

    @property
    def env(self) -> str | None:
        return self.trailer("Nepse-Env")

    @property
    def action(self) -> str | None:
        return self.trailer("Nepse-Action")

    def reverted_shas(self) -> list[str]:
        shas = list(self.trailers.get("nepse-reverts", []))
        shas += _REVERTS_BODY.findall(self.body)
        return shas


def parse_trailers(message: str) -> dict[str, list[str]]:
    """The trailers of a commit message: the last paragraph, if every line is `Key: value`."""
    paragraphs = [p for p in re.split(r"\n\s*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return {}
    lines = paragraphs[-1].splitlines()
    result: dict[str, list[str]] = {}
    for line in lines:
        match = _TRAILER.match(line.strip())
        if not match:
            return {}
        result.setdefault(match.group(1).lower(), []).append(match.group(2).strip())
    return result


class GitRepo:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def discover(cls, start: Path) -> GitRepo:
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--show-toplevel"],
                cwd=start,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            raise GitopsError(
                f"{start} is not inside a git repository (the environments must be in git)"
            ) from exc
        return cls(Path(out))

    def run(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            input=input_text,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip()
            raise GitopsError(f"git {' '.join(args)} failed: {detail}")
        return proc.stdout

    # -- state ------------------------------------------------------------------------------
    def dirty_paths(self) -> list[str]:
        out = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all")
        entries = [e for e in out.split("\0") if e]
        paths = []
        skip = False
        for entry in entries:
            if skip:
                skip = False
                continue
            status, path = entry[:2], entry[3:]
            if status[0] in "RC":
                skip = True
            paths.append(f"{status.strip() or '??'} {path}")
        return paths

    def require_clean(self, what: str) -> None:
        dirty = self.dirty_paths()
        if dirty:
            listed = "\n  ".join(dirty[:20])
            more = f"\n  ... and {len(dirty) - 20} more" if len(dirty) > 20 else ""
            raise GitopsError(
                f"refusing to {what}: the work tree has uncommitted changes; commit or stash "
                f"them first so the change lands alone:\n  {listed}{more}"
            )

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()

    def current_branch(self) -> str | None:
        out = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
        return out or None

    def branch_exists(self, name: str) -> bool:
        proc = subprocess.run(
            ["git", "show-ref", "--verify", "--quiet", f"refs/heads/{name}"],
            cwd=self.root,
        )
        return proc.returncode == 0

    def check_branch_name(self, name: str) -> None:
        proc = subprocess.run(
            ["git", "check-ref-format", "--branch", name], cwd=self.root, capture_output=True
        )
        if proc.returncode != 0:
            raise GitopsError(f"{name!r} is not a valid branch name")

    def create_branch(self, name: str) -> None:
        self.check_branch_name(name)
        if self.branch_exists(name):
            raise GitopsError(
                f"branch {name!r} already exists; delete it or pass --branch with another name"
            )
        self.run("switch", "--quiet", "-c", name)

    def switch(self, name: str) -> None:
        self.run("switch", "--quiet", name)

    def delete_branch(self, name: str) -> None:
        self.run("branch", "--quiet", "-D", name, check=False)

    # -- commits ----------------------------------------------------------------------------
    def commit(self, paths: Sequence[str], message: CommitMessage) -> str:
        self.run("add", "--", *paths)
        staged = [p for p in self.run("diff", "--cached", "--name-only", "-z").split("\0") if p]
        unexpected = sorted(set(staged) - set(paths))
        if unexpected:
            raise GitopsError(f"refusing to commit: unexpected staged files {unexpected}")
        if not staged:
            raise GitopsError("nothing to commit: the change leaves the files as they were")
        self.run("commit", "--quiet", "--no-verify", "-F", "-", input_text=message.text())
        return self.head()

    def changed_files(self, sha: str) -> list[str]:
        out = self.run("diff-tree", "--no-commit-id", "--name-only", "-r", "-z", sha)
        return [p for p in out.split("\0") if p]

    def log(self, paths: Iterable[str] = ()) -> list[LoggedCommit]:
        """Commits reachable from HEAD, newest first (merges skipped: they carry no change)."""
        fmt = "%H%x1f%s%x1f%B%x1e"
        args = ["log", "--no-merges", f"--format={fmt}"]
        paths = list(paths)
        if paths:
            args += ["--full-history", "--", *paths]
        out = self.run(*args)
        commits = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, subject, body = record.split("\x1f", 2)
            commits.append(LoggedCommit(sha, subject, body, parse_trailers(body)))
        return commits

    def revert_no_commit(self, shas: Sequence[str]) -> None:
        proc = subprocess.run(
            ["git", "revert", "--no-commit", *shas],
            cwd=self.root,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            subprocess.run(["git", "revert", "--abort"], cwd=self.root, capture_output=True)
            detail = (proc.stderr or proc.stdout).strip()
            raise GitopsError(
                "git revert did not apply cleanly (a later commit changed the same lines); "
                f"nothing was changed. git said: {detail}"
            )

    def abort_revert(self) -> None:
        subprocess.run(["git", "revert", "--abort"], cwd=self.root, capture_output=True)
        if self.dirty_paths():
            self.run("reset", "--quiet", "--hard", "HEAD")

    def commit_staged(self, message: CommitMessage) -> str:
        self.run("commit", "--quiet", "--no-verify", "-F", "-", input_text=message.text())
        return self.head()

    def landed_at(self, sha: str) -> int:
        """When ``sha`` reached the current branch (Unix seconds): its own committer time if
        it is on the branch's first-parent line, else the time of the merge that brought it."""
        out = self.run("rev-list", "--first-parent", "--ancestry-path", f"{sha}..HEAD").split()
        if out:
            oldest = out[-1]
            if self.run("rev-parse", f"{oldest}^1").strip() != sha:
                return self.commit_time(oldest)
        return self.commit_time(sha)

    def commit_time(self, sha: str) -> int:
        return int(self.run("show", "-s", "--format=%ct", sha).strip())

    # -- remotes ----------------------------------------------------------------------------
    def fetch(self, remote: str, branch: str) -> str:
        """Fetch ``branch`` from ``remote``; returns the remote's tip."""
        if not self.remote_url(remote):
            raise GitopsError(f"cannot fetch: no remote named {remote!r}")
        self.run("fetch", "--quiet", remote, f"refs/heads/{branch}")
        return self.run("rev-parse", "FETCH_HEAD").strip()

    def push_fast_forward(self, remote: str, branch: str) -> bool:
        """Push ``branch``; False when the remote refused because its branch moved on: a
        non-fast-forward, or another push that updated the branch while this one ran."""
        proc = subprocess.run(
            ["git", "push", "--porcelain", remote, f"{branch}:{branch}"],
            cwd=self.root,
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
        if proc.returncode == 0:
            return True
        refused = [line for line in proc.stdout.splitlines() if line.startswith("!")]
        if refused and all(_MOVED_ON.search(line) for line in refused):
            return False
        report = (proc.stdout + proc.stderr).strip()
        raise GitopsError(f"git push {remote} {branch} failed: {report}")

    def remote_url(self, remote: str) -> str | None:
        out = self.run("remote", "get-url", remote, check=False).strip()
        return out or None

    def push(self, remote: str, branch: str) -> None:
        if not self.remote_url(remote):
            raise GitopsError(
                f"cannot push: no remote named {remote!r} (add one with `git remote add`)"
            )
        self.run("push", "--quiet", "--set-upstream", remote, f"{branch}:{branch}")


def open_pull_request(
    repo: GitRepo, branch: str, base: str, message: CommitMessage, draft: bool = False
) -> str:
    """Open a pull request with the GitHub CLI; returns what gh prints (the PR's URL)."""
    gh = shutil.which("gh")
    if gh is None:
        raise GitopsError(
            f"the branch {branch!r} was pushed, but the GitHub CLI `gh` is not on PATH, "
            "so no pull request was opened; open one from the branch by hand"
        )
    args = [gh, "pr", "create", "--base", base, "--head", branch, "--title", message.subject]
    args += ["--body", message.text()]
    if draft:
        args.append("--draft")
    proc = subprocess.run(args, cwd=repo.root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise GitopsError(
            f"`gh pr create` failed for branch {branch!r}: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc.stdout.strip()
