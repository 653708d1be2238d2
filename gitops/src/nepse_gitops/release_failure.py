"""After a failed release is rolled back: the quarantine commit that keeps it from coming back.

Shared by `advance` (a failed gate) and its Argo Rollouts path (an aborted Rollout): the
rollback of the whole release, then the quarantine of what made the candidate different.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .context import Context, Delivery
from .errors import GitopsError
from .gitrepo import Annotation
from .quarantine import quarantine
from .rollback import rollback
from .state import Version


def quarantine_target(candidate: Version, stable: Version) -> tuple[str, str] | None:
    """What made the candidate different: its model version, else its image tag."""
    if candidate.model_version and candidate.model_version != stable.model_version:
        return "modelVersion", candidate.model_version
    if candidate.image_tag and candidate.image_tag != stable.image_tag:
        return "imageTag", candidate.image_tag
    return None


def quarantine_failed(
    ctx: Context, env_name: str, target: tuple[str, str], reason: str, why: str
) -> tuple[str | None, str]:
    """Land the quarantine of ``target`` (from quarantine_target) on the current branch; ``why``
    says who found the failure. Returns the commit (None when it could not be made) and the
    reason, which then says why the version is not quarantined: the rollback stands either
    way."""
    kind, value = target
    note = Annotation(
        f"Quarantined by nepse-gitops advance: {why}.", [("Nepse-Failed-In", env_name)]
    )
    try:
        landed = quarantine(
            replace(ctx, delivery=Delivery(), dry_run=False, annotation=note),
            value if kind == "imageTag" else None,
            value if kind == "modelVersion" else None,
            reason,
        )
    except GitopsError as exc:
        ctx.out(f"the rollback stands, but {kind} {value} is not quarantined: {exc}")
        return None, f"{reason}; not quarantined: {exc}"
    return landed.sha, reason


def undo_failed_release(
    ctx: Context,
    env_name: str,
    reason: str,
    target: tuple[str, str] | None,
    why: str,
    roll_back: Callable[[Context], str | None],
) -> tuple[list[str], str]:
    """Roll the release in flight back with ``roll_back``, then quarantine ``target``; with
    --dry-run, say so. Returns the commits and the reason (see quarantine_failed)."""
    here = replace(ctx, delivery=Delivery())
    if ctx.dry_run:
        ctx.out(f"dry run: {reason}")
        rollback(here, env_name, True, reason)
        if target:
            ctx.out(f"dry run: would then quarantine {target[0]} {target[1]}")
        return [], reason
    ctx.out(reason)
    sha = roll_back(here)
    commits = [sha] if sha else []
    if target:
        landed, reason = quarantine_failed(ctx, env_name, target, reason, why)
        if landed:
            commits.append(landed)
    return commits, reason
