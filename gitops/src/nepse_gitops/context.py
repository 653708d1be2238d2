"""What every command shares: the repository, where its log goes, where its commit goes,
whether it only says what it would do, the helm binary, and what a caller adds to its commit
message. One frozen object, built once by the command line (or by `advance` for the commands
it runs) and passed to each command first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .gitrepo import Annotation, GitRepo

Printer = Callable[[str], None]


@dataclass(frozen=True)
class Delivery:
    """Where the commit goes: the current branch, or a new one; optionally pushed and a PR."""

    branch: str | None = None
    push: bool = False
    pull_request: bool = False
    remote: str = "origin"
    base: str | None = None


@dataclass(frozen=True)
class Context:
    root: Path
    out: Printer
    delivery: Delivery = field(default_factory=Delivery)
    dry_run: bool = False
    helm: str | None = None
    # Added to the commit message of the command (`advance` records its step and verdict).
    annotation: Annotation | None = None

    @property
    def repo(self) -> GitRepo:
        return GitRepo(self.root)
